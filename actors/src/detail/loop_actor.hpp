// A CAF actor whose behaviour runs on a Reactor's own thread (the companion
// shape of DESIGN.md §2): messages to it become reactor tasks, so a shard's
// fibers, sockets and actor state are all touched by one thread only.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_companion.hpp>
#include <caf/actor_system.hpp>
#include <caf/mixin/requester.hpp>
#include <caf/scoped_execution_unit.hpp>

#include <memory>

#include "brubeck/pipeline/reactor.hpp"

namespace brubeck::detail {

// actor_companion lacks request(); the mixin adds it (for ask() from fibers).
class LoopActor : public caf::extend<caf::actor_companion, LoopActor>::with<caf::mixin::requester> {
 public:
  explicit LoopActor(caf::actor_config& cfg) : extended_base(cfg) {}
};

class LoopActorBinding {
 public:
  // On the loop's thread, before the first message can arrive.
  LoopActorBinding(caf::actor_system& sys, Reactor& reactor, caf::behavior bhvr)
      : unit_(&sys), reactor_(reactor) {
    handle_ = sys.spawn<LoopActor>();
    self_ = caf::actor_cast<LoopActor*>(handle_);
    // With no behaviour, the first activation would terminate the actor.
    self_->become(std::move(bhvr));
    self_->on_enqueue([this](caf::mailbox_element_ptr ptr) {
      // Runs on the sender's thread, under the companion's lock: never block.
      reactor_.post(std::make_unique<MailboxTask>(this, std::move(ptr)));
    });
  }

  ~LoopActorBinding() { shutdown(); }
  LoopActorBinding(const LoopActorBinding&) = delete;
  LoopActorBinding& operator=(const LoopActorBinding&) = delete;

  LoopActor* self() const noexcept { return self_; }
  const caf::actor& handle() const noexcept { return handle_; }

  // On the loop's thread: stops delivery (later messages are dropped by CAF),
  // then ends the actor so the system's count of live actors goes down.
  // A non-empty reason tells monitors (the supervisor) that this was a failure.
  void shutdown(caf::error reason = {}) {
    if (self_ == nullptr) return;
    self_->on_enqueue(nullptr);
    self_->quit(std::move(reason));
    self_->finalize();
    self_ = nullptr;
    handle_ = nullptr;
  }

 private:
  struct MailboxTask final : Task {
    MailboxTask(LoopActorBinding* b, caf::mailbox_element_ptr p) : binding(b), ptr(std::move(p)) {}
    void run() override {
      if (binding->self_ != nullptr) binding->self_->activate(&binding->unit_, *ptr);
    }
    LoopActorBinding* binding;
    caf::mailbox_element_ptr ptr;
  };

  caf::scoped_execution_unit unit_;  // built with the system: a default one crashes
  Reactor& reactor_;
  caf::actor handle_;
  LoopActor* self_ = nullptr;
};

}  // namespace brubeck::detail

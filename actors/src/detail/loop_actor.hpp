// A CAF actor whose behaviour runs on a Reactor's own thread (the companion
// shape: docs/architecture.md, "The shard: a CAF companion on its own
// reactor"): messages to it become reactor tasks, so a shard's
// fibers, sockets and actor state are all touched by one thread only.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_companion.hpp>
#include <caf/actor_system.hpp>
#include <caf/mixin/requester.hpp>
#include <caf/scoped_execution_unit.hpp>

#include <atomic>
#include <memory>

#include "brubeck/actors/detail/requester.hpp"
#include "brubeck/pipeline/reactor.hpp"

namespace brubeck::detail {

class LoopActorBinding {
 public:
  // On the loop's thread, before the first message can arrive.
  LoopActorBinding(caf::actor_system& sys, Reactor& reactor, caf::behavior bhvr)
      : unit_(&sys), reactor_(reactor) {
    handle_ = sys.spawn<LoopActor>();
    self_ = caf::actor_cast<LoopActor*>(handle_);
    // With no behaviour, the first activation would terminate the actor.
    self_->become(std::move(bhvr));
    // The actor can also end from outside (an exit message): the loop it
    // runs on has nothing left to do then.
    self_->on_exit([this] {
      exited_ = true;
      reactor_.stop();
    });
    self_->on_enqueue([this](caf::mailbox_element_ptr ptr) {
      // Runs on the sender's thread, under the companion's lock: never block.
      // Messages chain through CAF's own intrusive link; only the first one
      // into an empty inbox costs a reactor task (and maybe a wake-up).
      auto* e = ptr.release();
      auto* head = inbox_.load(std::memory_order_relaxed);
      do {
        e->next = head;
      } while (!inbox_.compare_exchange_weak(head, e, std::memory_order_acq_rel));
      if (head == nullptr) reactor_.post(std::make_unique<DrainTask>(this));
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
    if (!exited_) {
      self_->quit(std::move(reason));
      self_->finalize();
    }
    self_ = nullptr;
    handle_ = nullptr;
    dispose(backlog_);
    backlog_ = nullptr;
    dispose(inbox_.exchange(nullptr));
  }

 private:
  // Messages handled per task, so a burst of requests runs its fibers (and
  // recycles their stacks) between batches.
  static constexpr int kBatch = 64;

  struct DrainTask final : Task {
    explicit DrainTask(LoopActorBinding* b) : binding(b) {}
    void run() override { binding->drain(); }
    LoopActorBinding* binding;
  };

  static caf::mailbox_element* next_of(caf::mailbox_element* e) {
    return static_cast<caf::mailbox_element*>(e->next);
  }

  static void dispose(caf::mailbox_element* list) {
    while (list != nullptr) {
      caf::mailbox_element_ptr p{list};
      list = next_of(list);
    }
  }

  void drain() {
    if (self_ == nullptr || exited_) return;
    if (backlog_ == nullptr) {
      // The inbox is a stack: reverse it to handle messages in arrival order.
      auto* list = inbox_.exchange(nullptr, std::memory_order_acquire);
      while (list != nullptr) {
        auto* next = next_of(list);
        list->next = backlog_;
        backlog_ = list;
        list = next;
      }
    }
    for (int n = 0; n < kBatch && backlog_ != nullptr && !exited_; ++n) {
      caf::mailbox_element_ptr p{backlog_};
      backlog_ = next_of(backlog_);
      self_->activate(&unit_, *p);
    }
    if (backlog_ != nullptr && !exited_) reactor_.post(std::make_unique<DrainTask>(this));
  }

  caf::scoped_execution_unit unit_;  // built with the system: a default one crashes
  Reactor& reactor_;
  caf::actor handle_;
  LoopActor* self_ = nullptr;
  std::atomic<caf::mailbox_element*> inbox_{nullptr};
  caf::mailbox_element* backlog_ = nullptr;  // loop thread only, oldest first
  bool exited_ = false;
};

}  // namespace brubeck::detail

#include "brubeck/actors/ask.hpp"

#include <caf/atom.hpp>

namespace brubeck {

namespace {
thread_local detail::LoopActor* tl_requester = nullptr;
thread_local const ActorDirectory* tl_directory = nullptr;
}  // namespace

caf::actor named_actor(std::string_view name) {
  if (tl_directory == nullptr)
    throw std::logic_error("brubeck::named_actor called outside a shard");
  auto it = tl_directory->find(name);
  if (it == tl_directory->end())
    throw std::logic_error("brubeck::named_actor: no actor named '" + std::string(name) + "'");
  return it->second;
}

namespace detail {

LoopActor& current_requester() {
  if (tl_requester == nullptr) throw std::logic_error("brubeck::ask called outside a shard");
  return *tl_requester;
}

void set_current_requester(LoopActor* self, const ActorDirectory* directory) noexcept {
  tl_requester = self;
  tl_directory = directory;
}

void throw_actor_error(const caf::error& error) {
  if (error == caf::sec::request_receiver_down)
    throw Unavailable("ask: the actor is gone (" + caf::to_string(error) + ")");
  throw ActorError("ask: " + caf::to_string(error));
}

}  // namespace detail
}  // namespace brubeck

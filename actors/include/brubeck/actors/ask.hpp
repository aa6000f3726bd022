// Talking to actors from handler code: ask() sends a request to any CAF
// actor and suspends the calling fiber (never its shard) until the reply, an
// error or the deadline. named_actor() finds the actors an App registered
// with App::actor(), the same handles from every shard.
//
//   auto n = brubeck::ask<std::int64_t>(brubeck::named_actor("counter"),
//                                       std::chrono::seconds(1), incr_atom::value);
#pragma once

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/sec.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "brubeck/actors/detail/requester.hpp"
#include "brubeck/pipeline/errors.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"

namespace brubeck {

// The actor answered with an error (other than being gone).
struct ActorError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Actors registered with the App, by name; read-only while serving.
using ActorDirectory = std::map<std::string, caf::actor, std::less<>>;

// The actor the App registered under `name`; throws std::logic_error for an
// unknown name or outside a shard.
caf::actor named_actor(std::string_view name);

namespace detail {
// The calling shard's actor; throws std::logic_error outside a shard thread.
LoopActor& current_requester();
// Set by a shard on its own thread (null to clear).
void set_current_requester(LoopActor* self, const ActorDirectory* directory) noexcept;
[[noreturn]] void throw_actor_error(const caf::error& error);
}  // namespace detail

// Sends (xs...) to `whom` and waits for a reply of type R. Throws Timeout
// (the deadline), DeadlineExceeded (the request's), Unavailable (the actor
// is gone), ActorError (it answered with an error).
template <class R, class... Ts>
R ask(const caf::actor& whom, Clock::time_point deadline, Ts&&... xs) {
  auto& self = detail::current_requester();
  auto* hub = FiberHub::current();
  if (hub == nullptr) throw std::logic_error("brubeck::ask called outside a fiber");
  struct State {
    std::optional<R> value;
    caf::error error;
  };
  auto state = std::make_shared<State>();
  auto token = hub->prepare_wait();
  // No CAF timeout: in 0.17 it is not cancelled by the reply and would arrive
  // later anyway; the fiber's own deadline is the limit. A reply arriving
  // after the fiber gave up finds a stale token and only fills `state`.
  self.request(whom, caf::infinite, std::forward<Ts>(xs)...)
      .then(
          [state, hub, token](R& value) {
            state->value = std::move(value);
            hub->wake(token);
          },
          [state, hub, token](caf::error& error) {
            state->error = std::move(error);
            hub->wake(token);
          });
  if (!hub->suspend(token, deadline)) throw Timeout("ask: no reply in time");
  if (state->error) detail::throw_actor_error(state->error);
  return std::move(*state->value);
}

template <class R, class Rep, class Period, class... Ts>
R ask(const caf::actor& whom, std::chrono::duration<Rep, Period> timeout, Ts&&... xs) {
  return ask<R>(whom, Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout),
                std::forward<Ts>(xs)...);
}

}  // namespace brubeck

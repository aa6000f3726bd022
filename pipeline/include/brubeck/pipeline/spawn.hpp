// Child fibers for fan-out inside one request: spawn() starts a child on the
// calling fiber's shard with the caller's deadline; join() waits for it and
// returns its result or rethrows its exception. A Joinable dropped without
// join() cancels and joins its child, so no child outlives the data of the
// fiber that started it.
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "brubeck/pipeline/fiber_hub.hpp"

namespace brubeck {

template <class T>
class Joinable {
 public:
  Joinable(Joinable&& o) noexcept
      : hub_(std::exchange(o.hub_, nullptr)), fiber_(o.fiber_), state_(std::move(o.state_)) {}
  Joinable& operator=(Joinable&&) = delete;
  ~Joinable() {
    if (hub_ == nullptr) return;
    hub_->cancel(fiber_);
    hub_->join(fiber_);
  }

  // Waits (uninterruptibly: the child shares the caller's deadline) for the
  // child to end; returns its value or rethrows its exception.
  T join() {
    if (hub_ == nullptr) throw std::logic_error("brubeck: Joinable joined twice");
    auto* hub = std::exchange(hub_, nullptr);
    hub->join(fiber_);
    if (state_->error) std::rethrow_exception(state_->error);
    if (state_->cancelled) throw std::runtime_error("brubeck: child fiber was cancelled");
    if constexpr (!std::is_void_v<T>) return std::move(*state_->value);
  }
  bool finished() const noexcept { return hub_ == nullptr || hub_->finished(fiber_); }

 private:
  struct State {
    std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> value{};
    std::exception_ptr error;
    bool cancelled = false;
  };
  template <class F>
  friend auto spawn(F&& fn) -> Joinable<std::invoke_result_t<std::decay_t<F>&>>;
  Joinable(FiberHub* hub, FiberRef fiber, std::shared_ptr<State> state)
      : hub_(hub), fiber_(fiber), state_(std::move(state)) {}

  FiberHub* hub_;
  FiberRef fiber_;
  std::shared_ptr<State> state_;
};

// Starts fn as a child fiber of the calling fiber (same shard, same deadline).
template <class F>
auto spawn(F&& fn) -> Joinable<std::invoke_result_t<std::decay_t<F>&>> {
  using T = std::invoke_result_t<std::decay_t<F>&>;
  using State = typename Joinable<T>::State;
  auto* hub = FiberHub::current();
  if (hub == nullptr) throw std::logic_error("brubeck::spawn called outside a fiber");
  auto state = std::make_shared<State>();
  auto ref = hub->spawn_child([state, fn = std::forward<F>(fn)]() mutable {
    try {
      if constexpr (std::is_void_v<T>)
        fn();
      else
        state->value.emplace(fn());
    } catch (const FiberCancelled&) {
      state->cancelled = true;
      throw;
    } catch (const std::exception&) {
      state->error = std::current_exception();
    }
    // Anything else (Boost's forced_unwind included) goes on to the hub.
  });
  return Joinable<T>(hub, ref, std::move(state));
}

}  // namespace brubeck

// Replies in request order, per connection. HTTP/1.1 lets a client send
// several requests on one connection before the first reply (pipelining) and
// requires the replies in that order; a shard runs those requests in fibers
// that finish in any order. Each request takes a slot on its connection when
// the shard accepts it; bytes of the slot at the front go out at once, and
// bytes of later slots are held until every slot before them has sent its
// last bytes. A lone request (the usual case) never holds anything.
//
// It also is the shard's table of what runs for which connection, so that a
// disconnect notice cancels exactly those fibers. Shard-thread only.
#pragma once

#include <boost/container/small_vector.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "brubeck/pipeline/fiber_hub.hpp"

namespace brubeck::detail {

class ReplyOrder {
 public:
  // Where sendable bytes go: (sender, conn id, bytes); empty bytes close.
  using Sink = std::function<void(std::string_view, std::string_view, std::string_view)>;

  struct Limits {
    std::size_t max_slots = 64;             // requests waiting on one connection
    std::size_t max_held_bytes = 4u << 20;  // reply bytes held for one connection
  };

  ReplyOrder(Sink sink, Limits limits) : sink_(std::move(sink)), limits_(limits) {}

  // A slot for the next request on (sender, conn id), or 0 when that
  // connection is over its limits (the caller then closes it: see drop()).
  std::uint64_t open(std::string_view sender, std::uint64_t conn) {
    auto& state = connections_[key(sender, conn)];
    if (state.slots.size() >= limits_.max_slots) return 0;
    const std::uint64_t id = ++next_;
    state.slots.emplace_back().id = id;
    return id;
  }

  // The fiber running the slot's request, for cancel().
  void set_fiber(std::string_view sender, std::uint64_t conn, std::uint64_t id, FiberRef fiber) {
    if (Slot* slot = find(sender, conn, id).second) slot->fiber = fiber;
  }

  // True when slot `id`'s bytes may go out now (the caller sends them itself,
  // e.g. without a copy, then calls finish() after the last).
  bool ready(std::string_view sender, std::uint64_t conn, std::uint64_t id) {
    if (id == 0) return true;
    auto [state, slot] = find(sender, conn, id);
    return slot != nullptr && slot == &state->slots.front();
  }

  enum class Outcome { sent, held, stale, overflow };

  // Bytes of slot `id`'s reply; `last` ends it. Slot 0 is unordered: sent at
  // once. Bytes for a slot that is gone (its connection was dropped) are
  // discarded. `overflow`: the connection went over its held-bytes limit;
  // the caller closes it (drop()).
  Outcome send(std::string_view sender, std::string_view conn_id, std::uint64_t conn,
               std::uint64_t id, std::string_view bytes, bool last) {
    if (id == 0) {
      sink_(sender, conn_id, bytes);
      return Outcome::sent;
    }
    auto [state, slot] = find(sender, conn, id);
    if (slot == nullptr) return Outcome::stale;
    if (slot == &state->slots.front()) {
      sink_(sender, conn_id, bytes);
      if (last) release_front(sender, conn_id, conn);
      return Outcome::sent;
    }
    if (state->held_bytes + bytes.size() > limits_.max_held_bytes) return Outcome::overflow;
    state->held_bytes += bytes.size();
    slot->held.emplace_back(bytes);
    slot->done = last;
    ++held_total_;
    return Outcome::held;
  }

  // The slot's reply is complete (sent by the caller after ready()), or its
  // request ended without one (cancelled): the slots behind it go on.
  void finish(std::string_view sender, std::string_view conn_id, std::uint64_t conn,
              std::uint64_t id) {
    auto [state, slot] = find(sender, conn, id);
    if (slot == nullptr) return;
    slot->done = true;
    if (slot == &state->slots.front()) release_front(sender, conn_id, conn);
  }

  // Forgets the connection: what it held is discarded, later bytes for its
  // slots are stale. Calls `each` with every fiber still registered.
  template <class F>
  void drop(std::string_view sender, std::uint64_t conn, F&& each) {
    auto it = connections_.find(key(sender, conn));
    if (it == connections_.end()) return;
    auto slots = std::move(it->second.slots);
    connections_.erase(it);
    for (auto& slot : slots) each(slot.fiber);
  }

  // Every connection with a slot open: (sender, conn).
  template <class F>
  void for_each_connection(F&& each) const {
    for (const auto& [k, state] : connections_) each(std::string_view(senders_[k.sender]), k.conn);
  }

  std::size_t connections() const noexcept { return connections_.size(); }
  // How many sends had to wait for an earlier reply (for tests and stats).
  std::uint64_t held_total() const noexcept { return held_total_; }

 private:
  struct Slot {
    std::uint64_t id = 0;
    FiberRef fiber{};
    bool done = false;  // its last bytes are among `held`
    std::vector<std::string> held;
  };
  struct State {
    boost::container::small_vector<Slot, 2> slots;
    std::size_t held_bytes = 0;
  };
  struct Key {
    std::uint32_t sender;
    std::uint64_t conn;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept {
      return std::hash<std::uint64_t>{}(k.conn * 0x9E3779B97F4A7C15ULL ^ k.sender);
    }
  };

  // Senders are the uuids of the Mongrel2 servers: a handful.
  Key key(std::string_view sender, std::uint64_t conn) {
    for (std::uint32_t i = 0; i < senders_.size(); ++i)
      if (senders_[i] == sender) return {i, conn};
    senders_.emplace_back(sender);
    return {static_cast<std::uint32_t>(senders_.size() - 1), conn};
  }

  std::pair<State*, Slot*> find(std::string_view sender, std::uint64_t conn, std::uint64_t id) {
    auto it = connections_.find(key(sender, conn));
    if (it == connections_.end()) return {nullptr, nullptr};
    for (auto& slot : it->second.slots)
      if (slot.id == id) return {&it->second, &slot};
    return {&it->second, nullptr};
  }

  // The front slot is done: the next one's held bytes go out, and so on
  // while the new front is done too.
  void release_front(std::string_view sender, std::string_view conn_id, std::uint64_t conn) {
    auto it = connections_.find(key(sender, conn));
    auto& state = it->second;
    state.slots.erase(state.slots.begin());
    while (!state.slots.empty()) {
      Slot& front = state.slots.front();
      for (auto& bytes : front.held) {
        state.held_bytes -= bytes.size();
        sink_(sender, conn_id, bytes);
      }
      front.held.clear();
      if (!front.done) break;
      state.slots.erase(state.slots.begin());
    }
    if (state.slots.empty()) connections_.erase(it);
  }

  Sink sink_;
  Limits limits_;
  std::vector<std::string> senders_;
  std::unordered_map<Key, State, KeyHash> connections_;
  std::uint64_t next_ = 0;
  std::uint64_t held_total_ = 0;
};

}  // namespace brubeck::detail

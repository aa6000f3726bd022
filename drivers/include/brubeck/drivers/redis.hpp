// Redis for handler code: hiredis's async API runs on the shard's own reactor,
// so a fiber waiting for a reply suspends and the shard thread goes on
// serving other requests. A RedisClient is one connection that belongs to one
// shard; any number of that shard's fibers may have commands in flight on it
// at once (they are pipelined and answered in order). RedisSubscription is a
// separate connection in subscribe mode, read by one fiber.
//
// Everything here must be used from a fiber of the reactor that made it, and
// destroyed on that reactor's thread (a destruction elsewhere is handed back
// to that reactor). Hiredis has no timers: deadlines are enforced here. Redis
// answers a connection's commands in order, so a command past its deadline
// (its own, or the request's) closes its connection rather than let a slow
// reply (BLPOP, a long script) hold up the commands behind it: those already
// sent on it fail at once with Unavailable (they may or may not have run, so
// they are not sent again), and the client's later commands go out on a new
// connection, opened at once. Give blocking commands a connection of their
// own all the same: each timeout costs a reconnect.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "brubeck/pipeline/errors.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"

namespace brubeck {

namespace detail {
class RedisConnection;
class RedisSubscriber;
}  // namespace detail

// A decoded reply, copied out of hiredis's buffers so it outlives them.
struct RedisReply {
  enum class Type { nil, integer, string, status, error, array };

  Type type = Type::nil;
  std::int64_t integer = 0;
  std::string str;  // string, status and error replies
  std::vector<RedisReply> elements;

  bool is_nil() const noexcept { return type == Type::nil; }
  bool is_integer() const noexcept { return type == Type::integer; }
  bool is_string() const noexcept { return type == Type::string; }
  bool is_status() const noexcept { return type == Type::status; }
  bool is_error() const noexcept { return type == Type::error; }
  bool is_array() const noexcept { return type == Type::array; }
};

// The server answered with an error reply (WRONGTYPE, ERR...). The
// connection is fine and stays usable.
struct RedisError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class RedisClient {
 public:
  using Deadline = std::optional<Clock::time_point>;

  // From a fiber. Throws Unavailable when the server is down or refuses,
  // Timeout when the deadline passes first. A host name is resolved by a
  // blocking getaddrinfo: give shards an address.
  static std::shared_ptr<RedisClient> connect(const std::string& host, std::uint16_t port,
                                              Deadline deadline = {});
  // The calling shard's shared connection to host:port, made on first use
  // and made again once the previous one is known to be broken, so a server
  // restart costs the commands sent before the break was noticed, and the
  // shard needs no reconnection logic of its own.
  static std::shared_ptr<RedisClient> for_this_shard(const std::string& host, std::uint16_t port,
                                                     Deadline deadline = {});

  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends argv as one command (binary-safe) and waits for its reply. Throws
  // RedisError for an error reply, Unavailable when the connection is or gets
  // lost (or was given up by an earlier command's timeout), Timeout at the
  // deadline (the connection is then replaced, see above). A cancelled fiber
  // leaves its command on the connection. Subscribe and MONITOR are refused
  // (std::invalid_argument): they turn the connection into a stream; use
  // RedisSubscription.
  RedisReply command(std::vector<std::string> argv, Deadline deadline = {});

  std::int64_t incr(const std::string& key, Deadline deadline = {});
  std::optional<std::string> get(const std::string& key, Deadline deadline = {});
  void set(const std::string& key, const std::string& value, Deadline deadline = {});
  // Returns how many subscribers received the message.
  std::int64_t publish(const std::string& channel, const std::string& message,
                       Deadline deadline = {});

  // False once the connection broke (it never comes back: connect anew). A
  // connection replaced after a timeout is not broken: true while the new one
  // connects.
  bool connected() const noexcept;

 private:
  explicit RedisClient(std::shared_ptr<detail::RedisConnection> connection);
  // Closes `timed_out` if it is still this client's connection, after
  // starting its replacement.
  void drop_after_timeout(const detail::RedisConnection& timed_out) noexcept;
  // Shared with the fibers waiting on it, which may outlive its replacement.
  std::shared_ptr<detail::RedisConnection> connection_;
};

class RedisSubscription {
 public:
  using Deadline = std::optional<Clock::time_point>;

  struct Message {
    std::string channel;
    std::string payload;
  };

  // From a fiber: connects and subscribes, returning once the server has
  // confirmed every channel, so nothing published afterwards is missed.
  // Throws like RedisClient::connect.
  static RedisSubscription open(const std::string& host, std::uint16_t port,
                                std::vector<std::string> channels, Deadline deadline = {});

  RedisSubscription(RedisSubscription&&) noexcept;
  RedisSubscription& operator=(RedisSubscription&&) noexcept;
  ~RedisSubscription();

  // The next message, waiting for one if none is queued (one waiting fiber
  // at a time). Throws Timeout at the deadline; returns nullopt once the
  // connection is closed and every message received before has been taken.
  // Messages queue without bound until taken, so keep calling next().
  std::optional<Message> next(Deadline deadline = {});

  bool connected() const noexcept;

 private:
  explicit RedisSubscription(std::unique_ptr<detail::RedisSubscriber> subscriber);
  std::unique_ptr<detail::RedisSubscriber> subscriber_;
};

}  // namespace brubeck

// A ZeroMQ socket for handler code (a DEALER talking to another service, a
// PUSH feeding workers...) whose sends and receives suspend the calling fiber,
// never the shard: it waits on the socket's ZMQ_FD in the shard's own epoll
// loop.
//
// Like any ZeroMQ socket it is not thread-safe, and here it is also owned by
// one fiber at a time: two fibers of one shard must not wait on the same
// socket at once (use one socket per fiber, or hand it over). Deadlines apply
// on top of the fiber's own (DeadlineExceeded for the request's, Timeout for
// the call's). Sockets may be made anywhere; send and recv must run in a
// fiber of a running reactor.
#pragma once

#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "brubeck/pipeline/errors.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"

namespace brubeck {

class ZmqSocket {
 public:
  using Deadline = std::optional<Clock::time_point>;

  ZmqSocket(zmq::context_t& ctx, zmq::socket_type type);

  // Process-wide and never terminated: terminating a context waits for every
  // socket of it to close, which at exit would hang on a forgotten one.
  static zmq::context_t& default_context();

  void connect(const std::string& endpoint);
  void bind(const std::string& endpoint);
  // For socket options; sending or receiving through it directly skips the
  // waiting logic (use dontwait).
  zmq::socket_t& raw() { return socket_; }

  // One multipart message; suspends while the high-water mark is reached.
  // Throws Timeout at the deadline (nothing of the message has been sent
  // then: ZeroMQ accepts the later parts of a message once it took the first).
  void send(std::vector<std::string> parts, Deadline deadline = {});
  // One whole multipart message; Timeout at the deadline.
  std::vector<std::string> recv(Deadline deadline = {});

 private:
  // Suspends until ZMQ_EVENTS has `flag` (ZMQ_POLLIN or ZMQ_POLLOUT).
  void wait_for(short flag, Deadline deadline, const char* what);

  zmq::socket_t socket_;
};

}  // namespace brubeck

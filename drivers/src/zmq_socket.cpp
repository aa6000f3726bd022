#include "brubeck/drivers/zmq_socket.hpp"

#include <sys/epoll.h>

#include <stdexcept>

#include "brubeck/pipeline/reactor.hpp"

namespace brubeck {

ZmqSocket::ZmqSocket(zmq::context_t& ctx, zmq::socket_type type) : socket_(ctx, type) {}

zmq::context_t& ZmqSocket::default_context() {
  static zmq::context_t* ctx = [] {
    auto* c = new zmq::context_t(1);
    // Closing a socket then never waits for its unsent messages.
    c->set(zmq::ctxopt::blocky, false);
    return c;
  }();
  return *ctx;
}

void ZmqSocket::connect(const std::string& endpoint) { socket_.connect(endpoint); }

void ZmqSocket::bind(const std::string& endpoint) { socket_.bind(endpoint); }

void ZmqSocket::wait_for(short flag, Deadline deadline, const char* what) {
  auto* reactor = Reactor::current();
  if (reactor == nullptr || reactor->hub() == nullptr || reactor->hub() != FiberHub::current())
    throw std::logic_error("brubeck::ZmqSocket used outside a fiber of a running reactor");
  auto fd = socket_.get(zmq::sockopt::fd);
  for (;;) {
    // Reading ZMQ_EVENTS processes ZeroMQ's pending commands and clears the
    // fd; the fd only signals commands that arrive after that. So the state
    // is read again right before every wait, or a message that came while we
    // were busy would never wake us.
    if ((socket_.get(zmq::sockopt::events) & flag) != 0) return;
    // ZMQ_FD signals readability for both directions.
    if (!reactor->wait_fd(fd, EPOLLIN, deadline)) {
      if ((socket_.get(zmq::sockopt::events) & flag) != 0) return;
      throw Timeout(std::string("zmq ") + what + " timed out");
    }
  }
}

void ZmqSocket::send(std::vector<std::string> parts, Deadline deadline) {
  if (parts.empty()) throw std::invalid_argument("brubeck::ZmqSocket::send: no message parts");
  for (std::size_t i = 0; i < parts.size(); ++i) {
    auto flags = zmq::send_flags::dontwait;
    if (i + 1 < parts.size()) flags = flags | zmq::send_flags::sndmore;
    for (;;) {
      zmq::message_t msg(parts[i].data(), parts[i].size());
      if (socket_.send(msg, flags)) break;
      wait_for(ZMQ_POLLOUT, deadline, "send");
    }
  }
}

std::vector<std::string> ZmqSocket::recv(Deadline deadline) {
  std::vector<std::string> parts;
  zmq::message_t msg;
  // Try first: after an earlier recv more messages may be queued, and the fd
  // does not signal those again.
  while (!socket_.recv(msg, zmq::recv_flags::dontwait)) wait_for(ZMQ_POLLIN, deadline, "recv");
  parts.emplace_back(msg.to_string());
  // The rest of a multipart message arrives with its first part.
  while (msg.more()) {
    while (!socket_.recv(msg, zmq::recv_flags::dontwait)) wait_for(ZMQ_POLLIN, deadline, "recv");
    parts.emplace_back(msg.to_string());
  }
  return parts;
}

}  // namespace brubeck

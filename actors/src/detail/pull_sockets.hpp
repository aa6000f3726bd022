// The PULL side of Mongrel2's handler protocol, shared by the router and by a
// lone shard: one socket per send_spec, woken through the owner's reactor,
// read in bounded batches, disconnected to stop taking new requests.
#pragma once

#include <spdlog/spdlog.h>
#include <sys/epoll.h>

#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "brubeck/pipeline/reactor.hpp"

namespace brubeck::detail {

class PullSockets {
 public:
  PullSockets(zmq::context_t& zmq, std::vector<std::string> specs, int rcvhwm = 100000)
      : specs_(std::move(specs)) {
    for (const auto& spec : specs_) {
      auto& s = sockets_.emplace_back(zmq, zmq::socket_type::pull);
      s.set(zmq::sockopt::rcvhwm, rcvhwm);
      s.set(zmq::sockopt::linger, 0);
      s.connect(spec);
    }
    armed_.assign(sockets_.size(), 1);
  }

  // On the owner's thread, before the first receive(). A replacement shard
  // attaches the sockets of the one it replaces: the sockets (and the frames
  // queued on them) outlive one reactor.
  void attach(Reactor& reactor) {
    armed_.assign(sockets_.size(), 1);
    // ZMQ_FD only says "look again": the owner's poll hook calls receive().
    for (std::size_t i = 0; i < sockets_.size(); ++i)
      reactor.add_fd(sockets_[i].get(zmq::sockopt::fd), EPOLLIN | EPOLLET,
                     [this, i](std::uint32_t) { armed_[i] = 1; });
  }

  bool empty() const noexcept { return sockets_.empty(); }
  // Some socket may have frames: its fd fired, or it was not read to EAGAIN.
  bool armed() const noexcept {
    for (char a : armed_)
      if (a) return true;
    return false;
  }

  // Appends at most `per_socket` frames from each socket, so one busy
  // Mongrel2 cannot starve another. recv until EAGAIN also runs ZeroMQ's
  // pending commands, which re-reading ZMQ_EVENTS would do, in one call.
  //
  // A socket that answered EAGAIN is not asked again until its ZMQ_FD fires
  // (the documented pattern: after EAGAIN, ZeroMQ signals the fd when
  // something new arrives). Each EAGAIN costs ZeroMQ two system calls, so
  // asking on every loop pass doubled a shard's system calls per request.
  // `all`: ask every socket anyway (draining without a running reactor).
  std::size_t receive(std::vector<zmq::message_t>& out, std::size_t per_socket, bool all = false) {
    std::size_t got = 0;
    for (std::size_t i = 0; i < sockets_.size(); ++i) {
      if (!armed_[i] && !all) continue;
      for (std::size_t n = 0; n < per_socket; ++n) {
        zmq::message_t msg;
        if (!sockets_[i].recv(msg, zmq::recv_flags::dontwait)) {
          armed_[i] = 0;
          break;
        }
        out.push_back(std::move(msg));
        ++got;
      }
    }
    return got;
  }

  // Mongrel2's PUSH then skips this process; what reached our queues can
  // still be received.
  void disconnect() noexcept {
    for (std::size_t i = 0; i < sockets_.size(); ++i) {
      try {
        sockets_[i].disconnect(specs_[i]);
      } catch (const zmq::error_t& e) {
        spdlog::warn("disconnect from {}: {}", specs_[i], e.what());
      }
    }
  }

 private:
  std::vector<std::string> specs_;
  std::vector<zmq::socket_t> sockets_;
  std::vector<char> armed_;  // per socket: may have frames (its fd fired, or no EAGAIN yet)
};

// Where a lone shard's sockets wait between one incarnation and the next.
struct PullHandover {
  std::shared_ptr<PullSockets> sockets;
};

}  // namespace brubeck::detail

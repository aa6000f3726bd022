#include "brubeck/pipeline/tcp_stream.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "brubeck/pipeline/errors.hpp"
#include "brubeck/pipeline/offload.hpp"
#include "brubeck/pipeline/reactor.hpp"

namespace brubeck {

namespace {

Reactor& reactor() {
  auto* r = Reactor::current();
  if (r == nullptr || r->hub() != FiberHub::current())
    throw std::logic_error("brubeck::TcpStream used outside a fiber of a running reactor");
  return *r;
}

void wait_or_throw(int fd, std::uint32_t events, TcpStream::Deadline deadline, const char* what) {
  if (!reactor().wait_fd(fd, events, deadline))
    throw Timeout(std::string("tcp ") + what + " timed out");
}

struct AddrInfo {
  addrinfo* list = nullptr;
  ~AddrInfo() {
    if (list != nullptr) ::freeaddrinfo(list);
  }
};

}  // namespace

TcpStream::TcpStream(int fd) : fd_(fd) {
  int flags = ::fcntl(fd_, F_GETFL, 0);
  if (flags < 0 || ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK) < 0)
    throw std::system_error(errno, std::generic_category(), "fcntl O_NONBLOCK");
}

TcpStream::~TcpStream() { close(); }

TcpStream::TcpStream(TcpStream&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), pending_(std::move(o.pending_)) {}

TcpStream& TcpStream::operator=(TcpStream&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    pending_ = std::move(o.pending_);
  }
  return *this;
}

void TcpStream::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  pending_.clear();
}

void TcpStream::shutdown_write() noexcept {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

TcpStream TcpStream::connect(const std::string& host, std::uint16_t port, Deadline deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  auto service = std::to_string(port);
  // Captures by value: a lookup that outlives the deadline keeps running on
  // the offload pool after this fiber has moved on.
  auto resolve = [hints, host, service](int flags) {
    auto info = std::make_shared<AddrInfo>();
    addrinfo h = hints;
    h.ai_flags = flags;
    int rc = ::getaddrinfo(host.c_str(), service.c_str(), &h, &info->list);
    return std::pair{rc, info};
  };
  // Numeric addresses resolve without I/O; names may block, so off the shard.
  auto [rc, info] = resolve(AI_NUMERICHOST | AI_NUMERICSERV);
  if (rc == EAI_NONAME)
    std::tie(rc, info) = offload([resolve] { return resolve(AI_NUMERICSERV); }, deadline);
  if (rc != 0) throw Unavailable("cannot resolve " + host + ": " + ::gai_strerror(rc));

  std::string last_error = "no address";
  for (auto* ai = info->list; ai != nullptr; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
    TcpStream stream;
    stream.fd_ = fd;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return stream;
    if (errno != EINPROGRESS) {
      last_error = std::strerror(errno);
      continue;
    }
    wait_or_throw(fd, EPOLLOUT, deadline, "connect");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err == 0) return stream;
    last_error = std::strerror(err);
  }
  throw Unavailable("cannot connect to " + host + ":" + service + ": " + last_error);
}

std::size_t TcpStream::read_some(std::span<char> buffer, Deadline deadline) {
  if (fd_ < 0) throw std::logic_error("brubeck::TcpStream: read on a closed stream");
  if (!pending_.empty()) {
    auto n = std::min(buffer.size(), pending_.size());
    std::memcpy(buffer.data(), pending_.data(), n);
    pending_.erase(0, n);
    return n;
  }
  for (;;) {
    auto n = ::recv(fd_, buffer.data(), buffer.size(), 0);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      throw std::system_error(errno, std::generic_category(), "tcp read");
    wait_or_throw(fd_, EPOLLIN, deadline, "read");
  }
}

void TcpStream::read_exact(std::span<char> buffer, Deadline deadline) {
  std::size_t got = 0;
  while (got < buffer.size()) {
    auto n = read_some(buffer.subspan(got), deadline);
    if (n == 0) throw std::runtime_error("tcp: connection closed by peer");
    got += n;
  }
}

std::string TcpStream::read_until(std::string_view delimiter, std::size_t max_bytes,
                                  Deadline deadline) {
  std::string out = std::exchange(pending_, {});
  std::size_t scanned = 0;
  char chunk[4096];
  for (;;) {
    auto from = scanned >= delimiter.size() ? scanned - delimiter.size() + 1 : 0;
    if (auto pos = out.find(delimiter, from); pos != std::string::npos) {
      pending_ = out.substr(pos + delimiter.size());
      out.resize(pos + delimiter.size());
      return out;
    }
    if (out.size() >= max_bytes) throw std::runtime_error("tcp: delimiter not found in time");
    scanned = out.size();
    auto n = read_some(chunk, deadline);
    if (n == 0) throw std::runtime_error("tcp: connection closed by peer");
    out.append(chunk, n);
  }
}

void TcpStream::write_all(std::string_view data, Deadline deadline) {
  if (fd_ < 0) throw std::logic_error("brubeck::TcpStream: write on a closed stream");
  while (!data.empty()) {
    auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      throw std::system_error(errno, std::generic_category(), "tcp write");
    wait_or_throw(fd_, EPOLLOUT, deadline, "write");
  }
}

}  // namespace brubeck

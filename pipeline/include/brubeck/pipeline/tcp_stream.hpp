// A TCP connection for handler code that suspends the fiber, not the shard:
// connect, read and write wait on the shard's own epoll loop, each with an
// optional deadline on top of the request's.
//
// Errors: a refused or unreachable server throws Unavailable, a passed
// deadline Timeout (DeadlineExceeded for the request's), anything else
// std::system_error. Hosts are numeric addresses or names; names are
// resolved with getaddrinfo on the offload pool.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "brubeck/pipeline/fiber_hub.hpp"

namespace brubeck {

class TcpStream {
 public:
  using Deadline = std::optional<Clock::time_point>;

  TcpStream() = default;
  static TcpStream connect(const std::string& host, std::uint16_t port, Deadline deadline = {});
  // Adopts a connected socket (made nonblocking here).
  explicit TcpStream(int fd);
  ~TcpStream();
  TcpStream(TcpStream&& o) noexcept;
  TcpStream& operator=(TcpStream&& o) noexcept;

  // Reads what is there (waiting for at least one byte); 0 at end of stream.
  std::size_t read_some(std::span<char> buffer, Deadline deadline = {});
  // Reads exactly buffer.size() bytes; throws std::runtime_error on an
  // early end of stream.
  void read_exact(std::span<char> buffer, Deadline deadline = {});
  // Reads up to and including `delimiter`, at most max_bytes in all.
  std::string read_until(std::string_view delimiter, std::size_t max_bytes, Deadline deadline = {});
  void write_all(std::string_view data, Deadline deadline = {});
  void shutdown_write() noexcept;
  void close() noexcept;

  bool is_open() const noexcept { return fd_ >= 0; }
  int fd() const noexcept { return fd_; }

 private:
  int fd_ = -1;
  std::string pending_;  // read past a delimiter, served first
};

}  // namespace brubeck

#include "support/redis_server.hpp"

#include <poll.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

namespace brubeck::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Whether a Redis server answers PING on 127.0.0.1:port: accepting alone
// would not prove it is past loading.
bool answers_ping(int port, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  int fd = connect_loopback(port, timeout);
  if (fd < 0) return false;
  static constexpr char kPing[] = "PING\r\n";
  bool ok = ::write(fd, kPing, sizeof kPing - 1) == static_cast<ssize_t>(sizeof kPing - 1);
  std::string got;
  while (ok && got.find("\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) <= 0) break;
    char buf[64];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return got.rfind("+PONG\r\n", 0) == 0;
}

}  // namespace

RedisServer::RedisServer() {
  // A port found free can be taken before the server binds it: try a few.
  for (int attempt = 0;; ++attempt) {
    port_ = free_tcp_port();
    try {
      launch(std::chrono::seconds(10));
      return;
    } catch (const std::exception&) {
      if (attempt == 2) throw;
    }
  }
}

RedisServer::~RedisServer() {
  try {
    stop();
  } catch (...) {
  }
}

void RedisServer::start() {
  if (running()) throw std::logic_error("RedisServer::start: already running");
  launch(std::chrono::seconds(10));
}

void RedisServer::stop(int signal) {
  if (process_.pid() > 0 && !process_.exit_status()) process_.stop(signal, std::chrono::seconds(5));
}

bool RedisServer::running() { return process_.running(); }

void RedisServer::launch(std::chrono::milliseconds ready_within) {
  // BRUBECK_REDIS_SERVER names another binary (a test of the tests breaks it
  // on purpose and sees every Redis test fail).
  const char* binary = std::getenv("BRUBECK_REDIS_SERVER");
  process_.start(binary != nullptr && *binary != '\0' ? binary : "redis-server",
                 {"--bind", "127.0.0.1", "--port", std::to_string(port_), "--dir", dir_.path(),
                  "--save", "", "--appendonly", "no"});
  auto deadline = Clock::now() + ready_within;
  while (!answers_ping(port_, std::chrono::milliseconds(200))) {
    if (!process_.running() || Clock::now() >= deadline) {
      std::string why = process_.running() ? "did not answer in time" : "exited";
      process_.stop(SIGKILL, std::chrono::seconds(2));
      throw std::runtime_error("redis-server on port " + std::to_string(port_) + " " + why +
                               "; output:\n" + tail(process_.output(), 2000));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace brubeck::testing

// HttpClient against a real HTTP/1.1 server on loopback (a thread per
// connection, plain blocking sockets), from fibers of a real reactor.
#include "brubeck/drivers/http_client.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "brubeck/pipeline/reactor.hpp"
#include "brubeck/pipeline/spawn.hpp"
#include "support/fiber_runner.hpp"
#include "support/process.hpp"

namespace brubeck {
namespace {

using namespace std::chrono_literals;
using testing::run_fiber;

// Routes: /hello, /echo (the request body back), /n/<x> (<x> back), /slow
// (answers after 3 s), /truncated (promises 1000 bytes, sends 10, closes),
// /big (100 000 bytes); anything else 404. Every answer closes its connection.
class TestHttpServer {
 public:
  TestHttpServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) testing::throw_errno("socket");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listen_fd_, 256) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(listen_fd_);
      testing::throw_errno("bind/listen");
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~TestHttpServer() {
    stop_ = true;
    acceptor_.join();
    ::close(listen_fd_);
  }
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int connections() const { return accepted_.load(); }

 private:
  static constexpr int kMaxConnections = 500;

  void accept_loop() {
    std::vector<std::thread> handlers;
    while (!stop_ && accepted_ < kMaxConnections) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      handlers.emplace_back([this, fd] {
        serve(fd);
        ::close(fd);
      });
    }
    for (auto& t : handlers) t.join();
  }

  static std::string header_value(const std::string& head, const char* name) {
    std::size_t pos = 0;
    std::string key = std::string("\r\n") + name + ":";
    while ((pos = head.find("\r\n", pos)) != std::string::npos) {
      if (::strncasecmp(head.c_str() + pos, key.c_str(), key.size()) == 0) {
        auto start = head.find_first_not_of(' ', pos + key.size());
        auto end = head.find("\r\n", start);
        return head.substr(start, end - start);
      }
      pos += 2;
    }
    return {};
  }

  void write_all(int fd, const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      auto n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }

  void answer(int fd, int status, const std::string& body, const std::string& extra = "") {
    write_all(fd, "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Not Found") +
                      "\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\nConnection: close\r\n" + extra + "\r\n" + body);
  }

  void serve(int fd) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string data;
    char buf[4096];
    std::size_t head_end;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      data.append(buf, static_cast<std::size_t>(n));
    }
    std::string head = data.substr(0, head_end + 2);
    std::string body = data.substr(head_end + 4);
    auto length_text = header_value(head, "Content-Length");
    std::size_t length = length_text.empty() ? 0 : std::stoul(length_text);
    while (body.size() < length) {
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      body.append(buf, static_cast<std::size_t>(n));
    }
    std::string method = head.substr(0, head.find(' '));
    auto path_start = head.find(' ') + 1;
    std::string path = head.substr(path_start, head.find(' ', path_start) - path_start);

    if (path == "/hello") {
      answer(fd, 200, "hello world", "Content-Type: text/plain\r\nX-Test: yes\r\n");
    } else if (path == "/echo") {
      answer(fd, 200, body,
             "X-Method: " + method + "\r\nX-Content-Type: " + header_value(head, "Content-Type") +
                 "\r\nX-Custom: " + header_value(head, "X-Custom") + "\r\n");
    } else if (path.starts_with("/n/")) {
      answer(fd, 200, path.substr(3));
    } else if (path == "/slow") {
      for (int i = 0; i < 300 && !stop_; ++i) std::this_thread::sleep_for(10ms);
      answer(fd, 200, "late");
    } else if (path == "/truncated") {
      write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789");
    } else if (path == "/big") {
      answer(fd, 200, std::string(100'000, 'x'));
    } else {
      answer(fd, 404, "not found");
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
};

// Fibers still alive besides the caller (the client's timer fiber must be
// gone once no request runs, or a draining shard would wait for it).
std::size_t other_fibers() { return FiberHub::current()->live() - 1; }

void expect_idle_soon() {
  for (int i = 0; i < 50 && other_fibers() > 0; ++i) this_fiber::sleep_for(2ms);
  EXPECT_EQ(other_fibers(), 0u);
}

TEST(HttpClient, GetReturnsStatusHeadersAndBody) {
  TestHttpServer server;
  run_fiber([&] {
    auto& http = HttpClient::for_this_shard();
    EXPECT_EQ(&http, &HttpClient::for_this_shard()) << "one client per shard";
    auto r = http.get(server.url("/hello"), Clock::now() + 5s);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "hello world");
    EXPECT_EQ(r.header("x-test"), "yes");
    EXPECT_EQ(r.header("Content-Type"), "text/plain");
    EXPECT_EQ(r.header("X-Absent"), "");

    auto missing = http.get(server.url("/nowhere"), Clock::now() + 5s);
    EXPECT_EQ(missing.status, 404) << "an HTTP error status is a response, not an exception";
    EXPECT_EQ(missing.body, "not found");
    expect_idle_soon();
  });
}

TEST(HttpClient, PostAndCustomMethodsSendTheirBody) {
  TestHttpServer server;
  run_fiber([&] {
    auto& http = HttpClient::for_this_shard();
    auto r = http.post(server.url("/echo"), R"({"a":1})", "application/json", Clock::now() + 5s);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"a":1})");
    EXPECT_EQ(r.header("X-Method"), "POST");
    EXPECT_EQ(r.header("X-Content-Type"), "application/json");

    HttpClientRequest put;
    put.method = "PUT";
    put.url = server.url("/echo");
    put.headers = {{"X-Custom", "42"}, {"Content-Type", "text/plain"}};
    // Over 1 MiB, where curl would otherwise wait for a "100 Continue".
    put.body = std::string(2 << 20, 'p');
    auto p = http.request(put, Clock::now() + 5s);
    EXPECT_EQ(p.header("X-Method"), "PUT");
    EXPECT_EQ(p.header("X-Custom"), "42");
    EXPECT_EQ(p.body, put.body);
  });
}

TEST(HttpClient, FiftyConcurrentRequestsOnOneReactor) {
  TestHttpServer server;
  run_fiber([&] {
    auto start = Clock::now();
    std::vector<Joinable<std::string>> calls;
    for (int i = 0; i < 50; ++i)
      calls.push_back(spawn([&, i] {
        auto r = HttpClient::for_this_shard().get(server.url("/n/" + std::to_string(i)),
                                                  Clock::now() + 20s);
        EXPECT_EQ(r.status, 200);
        return r.body;
      }));
    EXPECT_GE(other_fibers(), 50u);
    for (int i = 0; i < 50; ++i)
      EXPECT_EQ(calls[static_cast<std::size_t>(i)].join(), std::to_string(i));
    EXPECT_LT(Clock::now() - start, 20s);
    expect_idle_soon();
  });
  EXPECT_GE(server.connections(), 1);
}

TEST(HttpClient, DeadlineTimesOutWhileTheReactorServesOthers) {
  TestHttpServer server;
  run_fiber([&] {
    int ticks = 0;
    bool done = false;
    auto ticker = spawn([&] {
      while (!done) {
        this_fiber::sleep_for(10ms);
        ++ticks;
      }
    });
    auto start = Clock::now();
    try {
      HttpClient::for_this_shard().get(server.url("/slow"), Clock::now() + 300ms);
      ADD_FAILURE() << "no Timeout";
    } catch (const DeadlineExceeded&) {
      ADD_FAILURE() << "the call's own deadline is a Timeout, not DeadlineExceeded";
    } catch (const Timeout&) {
    }
    auto took = Clock::now() - start;
    done = true;
    ticker.join();
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 2s);
    EXPECT_GE(ticks, 10) << "the shard kept running other fibers during the wait";
    expect_idle_soon();

    // The client still works after a timed-out transfer.
    EXPECT_EQ(HttpClient::for_this_shard().get(server.url("/hello"), Clock::now() + 5s).body,
              "hello world");
  });
}

TEST(HttpClient, FiberDeadlineThrowsDeadlineExceeded) {
  TestHttpServer server;
  run_fiber([&] {
    auto start = Clock::now();
    auto call = spawn([&] {
      auto* hub = FiberHub::current();
      hub->set_deadline(hub->self(), Clock::now() + 300ms);
      HttpClient::for_this_shard().get(server.url("/slow"), Clock::now() + 10s);
    });
    EXPECT_THROW(call.join(), DeadlineExceeded);
    EXPECT_LT(Clock::now() - start, 2s);
    expect_idle_soon();
  });
}

TEST(HttpClient, CancelledRequestIsRemovedAndTheClientGoesOn) {
  TestHttpServer server;
  run_fiber([&] {
    {
      auto call = spawn([&] { HttpClient::for_this_shard().get(server.url("/slow")); });
      this_fiber::sleep_for(100ms);
      // Dropping the Joinable cancels the child mid-transfer.
    }
    expect_idle_soon();
    EXPECT_EQ(HttpClient::for_this_shard().get(server.url("/hello"), Clock::now() + 5s).status,
              200);
  });
}

TEST(HttpClient, ConnectionRefusedIsUnavailable) {
  int port = testing::free_tcp_port();
  run_fiber([&] {
    auto start = Clock::now();
    EXPECT_THROW(HttpClient::for_this_shard().get("http://127.0.0.1:" + std::to_string(port) + "/",
                                                  Clock::now() + 5s),
                 Unavailable);
    EXPECT_LT(Clock::now() - start, 2s);
    expect_idle_soon();
  });
}

TEST(HttpClient, ServerClosingMidResponseIsAnError) {
  TestHttpServer server;
  run_fiber([&] {
    auto start = Clock::now();
    try {
      HttpClient::for_this_shard().get(server.url("/truncated"), Clock::now() + 10s);
      ADD_FAILURE() << "a truncated response was accepted";
    } catch (const Timeout& e) {
      ADD_FAILURE() << "hung until the deadline: " << e.what();
    } catch (const std::runtime_error&) {
    }
    EXPECT_LT(Clock::now() - start, 2s);
  });
}

TEST(HttpClient, BodyOverTheLimitFails) {
  TestHttpServer server;
  run_fiber([&] {
    HttpClientRequest req;
    req.url = server.url("/big");
    req.max_body_bytes = 1000;
    try {
      HttpClient::for_this_shard().request(req, Clock::now() + 5s);
      ADD_FAILURE() << "an oversized body was accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("1000"), std::string::npos) << e.what();
    }
    req.max_body_bytes = 100'000;
    EXPECT_EQ(HttpClient::for_this_shard().request(req, Clock::now() + 5s).body.size(), 100'000u);
  });
}

TEST(HttpClient, OutsideAFiberIsALogicError) {
  EXPECT_THROW(HttpClient::for_this_shard(), std::logic_error);
}

}  // namespace
}  // namespace brubeck

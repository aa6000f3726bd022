// Proves the integration harness on real parts: Mongrel2 and the minimal
// libzmq C handler (bench/baselines/m2_c_handler.c), no brubeck code at all.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

namespace brubeck::testing {
namespace {

class Baseline : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    m2_ = std::make_unique<Mongrel2Server>(Mongrel2Options{.protocol = GetParam()});
    m2_->start();
    handler_.start(binary_path("bench/m2_c_handler"), {m2_->send_spec(), m2_->recv_spec()});
    wait_for_handler(m2_->http_port(), "/", &handler_);
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << m2_->log_text() << "\n--- handler output:\n" << handler_.output() << "\n";
    }
  }

  std::unique_ptr<Mongrel2Server> m2_;
  ChildProcess handler_;
};

TEST_P(Baseline, GetReturnsHelloWorld) {
  HttpResponse r = http_get(m2_->http_port(), "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.reason, "OK");
  EXPECT_EQ(r.version, "HTTP/1.1");
  EXPECT_EQ(r.body, "Hello, World!");
  EXPECT_EQ(r.header("content-type"), "text/plain");
  EXPECT_EQ(r.header("CONTENT-LENGTH"), "13");
  EXPECT_EQ(r.header("X-Not-There"), "");
}

TEST_P(Baseline, AnyPathAndHostReachTheHandler) {
  // One catch-all route; a Host that matches no host goes to default_host.
  HttpConnection c(m2_->http_port());
  for (const char* host : {"127.0.0.1", "localhost:1234", "example.com"}) {
    HttpResponse r = c.request("GET", "/some/deep/path?x=1", {{"Host", host}});
    EXPECT_EQ(r.status, 200) << host;
    EXPECT_EQ(r.body, "Hello, World!") << host;
  }
  HttpResponse post = c.request("POST", "/form", {{"Content-Type", "text/plain"}}, "a body");
  EXPECT_EQ(post.status, 200);
}

TEST_P(Baseline, TwentyRequestsOnOneKeepAliveConnection) {
  HttpConnection c(m2_->http_port());
  for (int i = 0; i < 20; ++i) {
    HttpResponse r = c.request("GET", "/keep/" + std::to_string(i));
    ASSERT_EQ(r.status, 200) << "request " << i;
    ASSERT_EQ(r.body, "Hello, World!") << "request " << i;
    ASSERT_FALSE(c.closed_by_peer(0ms)) << "request " << i;
  }
  EXPECT_FALSE(c.closed_by_peer(100ms));
}

TEST_P(Baseline, StopEndsBothProcessesAndClosesClients) {
  HttpConnection c(m2_->http_port());
  ASSERT_EQ(c.request("GET", "/").status, 200);
  const pid_t m2_pid = m2_->pid();
  const pid_t handler_pid = handler_.pid();
  ASSERT_TRUE(pid_alive(m2_pid));
  ASSERT_TRUE(pid_alive(handler_pid));

  EXPECT_EQ(handler_.stop(SIGTERM, 5s), 0) << handler_.output();  // a clean exit
  m2_->stop();
  EXPECT_FALSE(m2_->running());
  EXPECT_TRUE(c.closed_by_peer(2s));

  // Reaped, not zombies: the pids are gone.
  EXPECT_FALSE(pid_alive(m2_pid));
  EXPECT_FALSE(pid_alive(handler_pid));
  errno = 0;
  EXPECT_EQ(::kill(m2_pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  errno = 0;
  EXPECT_EQ(::kill(handler_pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(port_accepts(m2_->http_port()));
}

INSTANTIATE_TEST_SUITE_P(Protocols, Baseline, ::testing::Values("json", "tnetstring"),
                         [](const auto& param_info) { return std::string(param_info.param); });

TEST(Mongrel2ServerTest, RestartKeepsPortsAndHandlerReconnects) {
  Mongrel2Server m2;
  m2.start();
  const int port = m2.http_port();
  const std::string send = m2.send_spec();
  ChildProcess handler;
  handler.start(binary_path("bench/m2_c_handler"), {m2.send_spec(), m2.recv_spec()});
  wait_for_handler(port, "/", &handler);

  m2.stop();
  EXPECT_FALSE(port_accepts(port));
  m2.start();
  EXPECT_EQ(m2.http_port(), port);
  EXPECT_EQ(m2.send_spec(), send);
  // ZeroMQ reconnects the running handler to the new Mongrel2.
  EXPECT_EQ(wait_for_handler(port, "/", &handler).body, "Hello, World!") << m2.log_text();
}

TEST(HarnessTest, FreePortsAreDistinct) {
  auto ports = free_tcp_ports(3);
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_NE(ports[0], ports[1]);
  EXPECT_NE(ports[1], ports[2]);
  EXPECT_NE(ports[0], ports[2]);
  for (int p : ports) EXPECT_GT(p, 0);
  EXPECT_FALSE(port_accepts(free_tcp_port()));
}

TEST(HarnessTest, ChildProcessStatusOutputAndStop) {
  ChildProcess quick;
  quick.start("sh", {"-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(quick.wait_for_exit(5s), 3);
  EXPECT_EQ(quick.output(), "out\nerr\n");

  ChildProcess sleeper;
  sleeper.start("sleep", {"30"});
  const pid_t pid = sleeper.pid();
  EXPECT_TRUE(sleeper.running());
  EXPECT_EQ(sleeper.stop(SIGTERM, 5s), 128 + SIGTERM);
  EXPECT_FALSE(pid_alive(pid));

  ChildProcess stubborn;  // ignores SIGTERM: stop() falls back to SIGKILL
  stubborn.start("sh", {"-c", "trap '' TERM; exec sleep 30"});
  ASSERT_FALSE(stubborn.wait_for_exit(200ms).has_value());
  EXPECT_EQ(stubborn.stop(SIGTERM, 300ms), 128 + SIGKILL);

  ChildProcess missing;
  EXPECT_THROW(missing.start("/nonexistent/brubeck-binary", {}), std::system_error);
  EXPECT_EQ(missing.pid(), -1);
}

TEST(HarnessTest, HttpTimeoutsAndClosedConnectionsAreReported) {
  int port = free_tcp_port();
  EXPECT_THROW(HttpConnection(port, 200ms), std::system_error);  // nobody listens

  // A listener that accepts but never answers: request() times out.
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  EXPECT_TRUE(port_accepts(port));
  int stale = ::accept(lfd, nullptr, nullptr);  // the probe's connection
  ::close(stale);

  HttpConnection c(port, 1s, 200ms);
  int server = ::accept(lfd, nullptr, nullptr);
  ASSERT_GE(server, 0);
  EXPECT_THROW(c.request("GET", "/"), std::runtime_error);
  EXPECT_FALSE(c.closed_by_peer(50ms));

  // A response split over writes, then the server closes: body until close.
  const std::string reply = "HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\nuntil close";
  ASSERT_EQ(::write(server, reply.data(), reply.size()), static_cast<ssize_t>(reply.size()));
  ::close(server);
  HttpResponse r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-a"), "1");
  EXPECT_EQ(r.body, "until close");
  EXPECT_TRUE(c.closed_by_peer(0ms));
  EXPECT_THROW(c.request("GET", "/"), std::runtime_error);

  // Chunked bodies are decoded; closed_by_peer sees a close after a reply.
  HttpConnection d(port, 1s, 2s);
  server = ::accept(lfd, nullptr, nullptr);
  ASSERT_GE(server, 0);
  const std::string chunked =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n"
      "8;ext=1\r\n, World!\r\n0\r\n\r\n";
  ASSERT_EQ(::write(server, chunked.data(), chunked.size()), static_cast<ssize_t>(chunked.size()));
  HttpResponse e = d.request("GET", "/chunked");
  EXPECT_EQ(e.body, "Hello, World!");
  EXPECT_FALSE(d.closed_by_peer(20ms));
  ::close(server);
  EXPECT_TRUE(d.closed_by_peer(1s));
  ::close(lfd);
}

}  // namespace
}  // namespace brubeck::testing

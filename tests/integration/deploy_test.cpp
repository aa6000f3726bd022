// The deploy kit for real: the health route through Mongrel2, systemd's
// notify protocol spoken by the demo to a socket the test binds (as systemd
// would), the unit file checked by systemd-analyze, and a configuration from
// deploy/mongrel2-config loaded by m2sh and served by Mongrel2 with two demo
// processes behind it (static files, handler routes, a spooled upload).
//
// Every process is started and stopped by pid (see harness.hpp); traffic
// stays on 127.0.0.1.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace brubeck::testing {
namespace {

using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------ health route

// Through real Mongrel2: 200 and the JSON once the demo is up; during a
// SIGTERM drain (a 2 s /feed in flight) the process no longer pulls requests,
// so a /healthz sent then gets no answer at all from it (Mongrel2 holds the
// request for a handler that is gone) and never a 200. The "draining" state
// itself is observed in tests/actors (App::health()) and below through the
// notify socket (STOPPING=1, STATUS=draining).
TEST(DeployHealth, ReadyThroughMongrel2AndNeverReadyWhileDraining) {
  DemoServer server(DemoOptions{.args = {"--shards", "2"}});
  auto r = http_get(server.port(), "/healthz");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(r.header("Cache-Control"), "no-store");
  EXPECT_EQ(r.body, R"({"status":"ready","shards":2,"alive":2,"subscribed":2})");

  HttpConnection feed(server.port());
  feed.send_raw("GET /feed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  std::this_thread::sleep_for(300ms);  // in the handler's hands
  ASSERT_EQ(::kill(server.demo().pid(), SIGTERM), 0);
  std::this_thread::sleep_for(200ms);
  std::optional<HttpResponse> during;
  try {
    HttpConnection probe(server.port(), 2s, 1s);
    during = probe.request("GET", "/healthz");
  } catch (const std::runtime_error&) {
    // No answer within 1 s: what a load balancer sees as "not ready".
  }
  if (during) {
    EXPECT_NE(during->status, 200) << "ready while draining: " << during->body;
  }
  auto fed = feed.read_response();
  EXPECT_EQ(fed.status, 200) << "the drain lets /feed finish";
  EXPECT_EQ(server.demo().wait_for_exit(10s), std::optional<int>(0)) << server.demo().output();
}

// ------------------------------------------------------------ sd_notify

// A unix datagram socket playing systemd's notify socket.
class NotifySocket {
 public:
  NotifySocket() : dir_("brubeck-notify") {
    path_ = dir_.path() + "/notify";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw_errno("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw_errno("bind");
  }
  ~NotifySocket() { ::close(fd_); }
  const std::string& path() const { return path_; }

  struct Message {
    std::string text;
    Clock::time_point at;
    bool has(std::string_view line) const {
      std::istringstream in(text);
      for (std::string l; std::getline(in, l);)
        if (l == line) return true;
      return false;
    }
  };
  // The next datagram, or nullopt after `timeout`.
  std::optional<Message> receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    char buf[4096];
    auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    Message m{std::string(buf, static_cast<std::size_t>(n)), Clock::now()};
    seen_.push_back(m);
    return m;
  }
  // Receives until a message has `line` (kept with all others in seen()).
  std::optional<Message> await(std::string_view line, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      auto m = receive(std::max(left, 1ms));
      if (m && m->has(line)) return m;
    }
    return std::nullopt;
  }
  const std::vector<Message>& seen() const { return seen_; }
  std::string transcript() const {
    std::string out;
    for (const auto& m : seen_) out += "[" + m.text + "]\n";
    return out;
  }

 private:
  TempDir dir_;
  std::string path_;
  int fd_ = -1;
  std::vector<Message> seen_;
};

Headers notify_env(const NotifySocket& socket, std::chrono::microseconds watchdog) {
  return {{"NOTIFY_SOCKET", socket.path()}, {"WATCHDOG_USEC", std::to_string(watchdog.count())}};
}

// READY=1 comes once the app is ready (and /healthz says so), WATCHDOG=1
// every half WATCHDOG_USEC, STOPPING=1 with STATUS=draining at SIGTERM while
// a request is still in flight, and the process then exits 0.
TEST(DeployNotify, ReadyWatchdogAndStoppingReachTheNotifySocket) {
  NotifySocket notify;
  Mongrel2Server m2;
  m2.start();
  ChildProcess demo;
  demo.start(binary_path("examples/brubeck_demo"),
             {"--send-spec", m2.send_spec(), "--recv-spec", m2.recv_spec(), "--shards", "2"},
             demo_options(notify_env(notify, 400ms)));
  auto ready = notify.await("READY=1", 15s);
  ASSERT_TRUE(ready) << notify.transcript() << demo.output();
  EXPECT_TRUE(ready->has("STATUS=ready: 2 of 2 shards alive, 2 with Mongrel2 subscribed"))
      << ready->text;
  // Nothing said ready before: every earlier status was another one.
  for (const auto& m : notify.seen()) {
    if (&m != &notify.seen().back()) {
      EXPECT_FALSE(m.has("READY=1")) << notify.transcript();
    }
  }
  auto health = wait_for_handler(m2.http_port(), "/healthz", &demo, 5s);
  EXPECT_EQ(health.status, 200);

  // Pings every 200 ms: at least 5 in 1.5 s, none more than 150 ms early.
  std::vector<Clock::time_point> pings;
  auto until = Clock::now() + 2000ms;
  while (Clock::now() < until)
    if (auto m = notify.receive(100ms); m && m->has("WATCHDOG=1")) pings.push_back(m->at);
  ASSERT_GE(pings.size(), 4u) << notify.transcript();
  EXPECT_LE(pings.size(), 11u) << "pings at half WATCHDOG_USEC, not faster";
  EXPECT_GE((pings.back() - pings.front()) / (pings.size() - 1), 150ms)
      << "pings at half WATCHDOG_USEC, not faster";

  HttpConnection feed(m2.http_port());
  feed.send_raw("GET /feed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(::kill(demo.pid(), SIGTERM), 0);
  auto stopping = notify.await("STOPPING=1", 3s);
  ASSERT_TRUE(stopping) << notify.transcript();
  EXPECT_NE(stopping->text.find("STATUS=draining"), std::string::npos) << stopping->text;
  EXPECT_TRUE(demo.running()) << "STOPPING=1 comes while the drain runs, not after";
  EXPECT_EQ(feed.read_response().status, 200);
  EXPECT_EQ(demo.wait_for_exit(10s), std::optional<int>(0)) << demo.output();
}

// The watchdog is fed only while every shard answers: a shard computing for
// 4 s without giving its thread back (demo.faults' /fault/spin) stops the
// pings after 2 s, as systemd needs to restart a wedged process; STATUS
// says "shard down", and the pings resume once the shard answers again.
TEST(DeployNotify, AWedgedShardStopsFeedingTheWatchdog) {
  NotifySocket notify;
  Mongrel2Server m2;
  m2.start();
  ChildProcess demo;
  demo.start(binary_path("examples/brubeck_demo"),
             {"--send-spec", m2.send_spec(), "--recv-spec", m2.recv_spec(), "--shards", "1",
              "--demo-faults", "--stall-ms", "0"},
             demo_options(notify_env(notify, 400ms)));
  ASSERT_TRUE(notify.await("READY=1", 15s)) << notify.transcript() << demo.output();
  HttpConnection spin(m2.http_port(), 5s, 15s);
  spin.send_raw("GET /fault/spin?ms=4000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  auto down =
      notify.await("STATUS=shard down: 0 of 1 shards alive, 1 with Mongrel2 subscribed", 5s);
  ASSERT_TRUE(down) << notify.transcript();
  EXPECT_EQ(spin.read_response().status, 200);
  auto back = notify.await("STATUS=ready: 1 of 1 shards alive, 1 with Mongrel2 subscribed", 3s);
  ASSERT_TRUE(back) << notify.transcript();
  ASSERT_TRUE(notify.await("WATCHDOG=1", 1s)) << "pings resume: " << notify.transcript();
  // No ping between "shard down" and "ready" again.
  for (const auto& m : notify.seen()) {
    if (m.at > down->at && m.at < back->at) {
      EXPECT_FALSE(m.has("WATCHDOG=1")) << "fed while a shard was down:\n" << notify.transcript();
    }
  }
  EXPECT_GE(back->at - down->at, 1s) << notify.transcript();
  EXPECT_EQ(demo.stop(SIGTERM), 0) << demo.output();
}

// ------------------------------------------------------------ the unit

std::string unit_path() { return source_dir() + "/deploy/brubeck@.service"; }

// `KEY=value` lines of the unit (the last of each key).
std::string unit_value(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string value;
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + "=", 0) == 0) value = line.substr(key.size() + 1);
  return value;
}

// systemd-analyze verify on a copy whose ExecStart names a real program:
// exit 0 and not one line of output (it prints, and exits 0, for a value it
// cannot parse: the second half shows that such a line is caught).
std::pair<int, std::string> verify_unit(const std::string& text) {
  TempDir dir("brubeck-unit");
  const std::string path = dir.path() + "/brubeck@.service";
  std::ofstream(path) << text;
  return run_process("/usr/bin/systemd-analyze", {"verify", "--man=no", path}, 30s);
}

TEST(DeployUnit, SystemdAnalyzeVerifiesItWithoutAWord) {
  const auto original = read_file(unit_path());
  ASSERT_FALSE(original.empty()) << unit_path();
  const std::string exec = unit_value(original, "ExecStart");
  const std::string program = exec.substr(0, exec.find(' '));
  ASSERT_EQ(program, "/usr/local/bin/brubeck-app") << "the placeholder the test replaces";
  auto text = original;
  text.replace(text.find(program), program.size(), binary_path("examples/brubeck_demo"));
  auto [status, output] = verify_unit(text);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "") << "systemd-analyze verify has something to say";

  auto broken = text;
  broken.replace(broken.find("WatchdogSec=10s"), 15, "WatchdogSec=ten");
  auto [broken_status, broken_output] = verify_unit(broken);
  EXPECT_NE(broken_output, "") << "a bad value must show in the output";
}

// What the unit promises: notify with a watchdog, reload by SIGHUP, a stop
// that waits longer than the drain's grace, a restart on failure.
TEST(DeployUnit, NotifiesReloadsAndStopsWithinTheGrace) {
  const auto text = read_file(unit_path());
  EXPECT_EQ(unit_value(text, "Type"), "notify");
  EXPECT_EQ(unit_value(text, "NotifyAccess"), "main");
  EXPECT_EQ(unit_value(text, "ExecReload"), "/bin/kill -HUP $MAINPID");
  EXPECT_EQ(unit_value(text, "Restart"), "on-failure");
  EXPECT_EQ(unit_value(text, "KillSignal"), "SIGTERM");
  std::smatch m;
  const auto grace_env = unit_value(text, "Environment");
  ASSERT_TRUE(std::regex_match(grace_env, m, std::regex(R"(BRUBECK_GRACE_MS=(\d+))"))) << grace_env;
  const auto grace = std::chrono::milliseconds(std::stoll(m[1]));
  const auto stop_sec = unit_value(text, "TimeoutStopSec");
  ASSERT_TRUE(std::regex_match(stop_sec, m, std::regex(R"((\d+)s)"))) << stop_sec;
  const auto stop = std::chrono::seconds(std::stoll(m[1]));
  EXPECT_GE(stop, grace + 5s) << "systemd would SIGKILL a drain still within its grace";
  const auto watchdog = unit_value(text, "WatchdogSec");
  ASSERT_TRUE(std::regex_match(watchdog, m, std::regex(R"((\d+)s)"))) << watchdog;
  EXPECT_GE(std::chrono::seconds(std::stoll(m[1])), 4s)
      << "a shard counts as down after 2 s without an answer: the watchdog must be longer";
}

// ------------------------------------------------------------ Mongrel2 config

// deploy/mongrel2-config --into DIR: m2sh loads it (checked by the script),
// and Mongrel2 serves a static file through its Dir handler, two demo
// processes on one handler route (both take requests: each counts its own
// /counter), and an upload over --max-inline spooled to the upload store.
TEST(DeployMongrel2Config, ServesStaticFilesTwoHandlerProcessesAndSpooledUploads) {
  TempDir dir("brubeck-m2conf");
  auto ports = free_tcp_ports(3);
  const std::string send = "tcp://127.0.0.1:" + std::to_string(ports[1]);
  const std::string recv = "tcp://127.0.0.1:" + std::to_string(ports[2]);
  std::filesystem::create_directories(dir.path() + "/public/css");
  std::ofstream(dir.path() + "/public/css/site.css") << "body { color: teal }\n";
  std::ofstream(dir.path() + "/public/index.html") << "<h1>static</h1>\n";
  auto [status, output] =
      run_process(source_dir() + "/deploy/mongrel2-config",
                  {"--into", dir.path(), "--host", "localhost", "--port", std::to_string(ports[0]),
                   "--static", "/static/=public", "--handler", "/=" + send + "," + recv,
                   "--max-inline", "4096", "--upload-store", "/spool"},
                  60s);
  ASSERT_EQ(status, 0) << output;
  const auto conf = read_file(dir.path() + "/mongrel2.conf");
  EXPECT_NE(conf.find("Dir("), std::string::npos) << conf;
  EXPECT_NE(conf.find("'limits.content_length': 4096"), std::string::npos) << conf;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(output, m, std::regex(R"(mongrel2 config.sqlite ([0-9a-f-]{36}))")))
      << output;
  const std::string uuid = m[1];
  ASSERT_TRUE(std::filesystem::is_directory(dir.path() + "/spool"));

  ChildProcess mongrel2;
  ChildOptions m2_options;
  m2_options.cwd = dir.path();
  m2_options.env.emplace_back("LOGNAME", "brubeck");
  mongrel2.start("mongrel2", {"config.sqlite", uuid}, m2_options);
  for (int i = 0; i < 200 && !port_accepts(ports[0], 50ms); ++i) {
    ASSERT_TRUE(mongrel2.running()) << mongrel2.output();
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(port_accepts(ports[0])) << mongrel2.output();

  auto css = http_get(ports[0], "/static/css/site.css");
  EXPECT_EQ(css.status, 200);
  EXPECT_EQ(css.body, "body { color: teal }\n");
  EXPECT_EQ(css.header("Server").rfind("Mongrel2", 0), 0u) << "served by Mongrel2 itself";
  EXPECT_EQ(http_get(ports[0], "/static/").body, "<h1>static</h1>\n") << "the index file";

  std::vector<std::string> demo_args = {"--send-spec",       send,
                                        "--recv-spec",       recv,
                                        "--shards",          "1",
                                        "--mongrel2-chroot", dir.path(),
                                        "--upload-store",    dir.path() + "/spool"};
  ChildProcess first, second;
  first.start(binary_path("examples/brubeck_demo"), demo_args, demo_options({}));
  wait_for_handler(ports[0], "/healthz", &first);
  second.start(binary_path("examples/brubeck_demo"), demo_args, demo_options({}));
  // Each process counts its own /counter from 1: a second "1" is the second
  // process answering. Mongrel2's PUSH spreads messages round-robin, and
  // the disconnect notice of a closed connection is a message too: requests
  // on fresh connections, one at a time, alternate with their notices and
  // all reach one process. Hence one keep-alive connection.
  HttpConnection keep(ports[0]);
  int ones = 0;
  for (int i = 0; i < 40 && ones < 2; ++i) {
    ASSERT_TRUE(second.running()) << second.output();
    auto r = keep.request("GET", "/counter");
    ASSERT_EQ(r.status, 200) << r.body;
    if (r.body == "1") ++ones;
    if (ones < 2) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(ones, 2) << "the second handler process never answered:\n" << second.output();
  EXPECT_EQ(http_get(ports[0], "/brubeck?name=ops").body, "Take five, ops!");

  // 10,000 bytes > --max-inline 4096: spooled by Mongrel2 to /spool in its
  // chroot, read by whichever process gets it, then deleted.
  const std::string payload(10000, 'x');
  const std::string boundary = "b0undary";
  const std::string body = "--" + boundary +
                           "\r\nContent-Disposition: form-data; name=\"doc\"; "
                           "filename=\"x.txt\"\r\nContent-Type: text/plain\r\n\r\n" +
                           payload + "\r\n--" + boundary + "--\r\n";
  HttpConnection upload(ports[0]);
  auto up = upload.request("POST", "/upload",
                           {{"Content-Type", "multipart/form-data; boundary=" + boundary}}, body);
  EXPECT_EQ(up.status, 200) << up.body;
  EXPECT_NE(up.body.find(R"("size":10000)"), std::string::npos) << up.body;
  const auto spooled = read_file(dir.path() + "/logs/error.log");
  EXPECT_NE(spooled.find("Writing tempfile /spool/upload."), std::string::npos)
      << "Mongrel2 did not spool the upload:\n"
      << spooled;
  bool left = false;
  for (int i = 0; i < 40; ++i) {
    left = !std::filesystem::is_empty(dir.path() + "/spool");
    if (!left) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_FALSE(left) << "the spool file was not deleted";

  EXPECT_EQ(second.stop(SIGTERM), 0) << second.output();
  EXPECT_EQ(first.stop(SIGTERM), 0) << first.output();
  mongrel2.stop(SIGINT);
}

}  // namespace
}  // namespace brubeck::testing

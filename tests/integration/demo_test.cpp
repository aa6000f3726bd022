// The demo app (examples/demo.cpp) behind a real Mongrel2, driven over HTTP:
// every demo route, concurrency of waiting fibers, shard affinity of a
// keep-alive connection, malformed frames, and a clean stop on SIGTERM.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "harness.hpp"

namespace brubeck::testing {
namespace {

// Waits (bounded) until `needle` occurs `n` times in the process's output.
// With --log-level debug a shard logs "GET /feed started" when it takes a
// request: the request is then in flight, a fact instead of a guess by time.
bool await_output(const ChildProcess& process, const std::string& needle, std::size_t n,
                  std::chrono::milliseconds limit = 10s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (count_of(process.output(), needle) < n) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

class Demo : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    // A second send_spec the test pushes into directly, as a second Mongrel2
    // would: the only way to hand the handler frames Mongrel2 never makes.
    extra_push_.set(zmq::sockopt::linger, 0);
    extra_push_.bind("tcp://127.0.0.1:*");
    server_.emplace(DemoOptions{
        .args = {"--send-spec", extra_push_.get(zmq::sockopt::last_endpoint), "--shards", "2",
                 "--no-pin", "--grace-ms", "3000", "--log-level", "debug"},
        .env = {{"BRUBECK_DEMO_SQLITE", sqlite_dir_.path() + "/notes.db"}},
        .protocol = GetParam()});
  }

  void TearDown() override {
    if (server_) server_->expect_clean_stop();
  }

  int port() const { return server_->port(); }
  ChildProcess& demo() { return server_->demo(); }

  TempDir sqlite_dir_{"brubeck-demo-sqlite"};
  zmq::context_t zmq_{1};
  zmq::socket_t extra_push_{zmq_, zmq::socket_type::push};
  std::optional<DemoServer> server_;
};

TEST_P(Demo, ClassHandlerWithQueryArgument) {
  auto r = http_get(port(), "/brubeck?name=ada");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Take five, ada!");
  EXPECT_EQ(http_get(port(), "/brubeck").body, "Take five, dude!");
  EXPECT_EQ(http_get(port(), "/brubeck?name=ada+lovelace").body, "Take five, ada lovelace!");
}

TEST_P(Demo, IndexClassAndFunctionRoutes) {
  HttpConnection c(port());
  auto r = c.request("GET", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Take five!");
  EXPECT_EQ(c.request("GET", "/class/WORD").body, "Take five, WORD!");
  EXPECT_EQ(c.request("GET", "/fun/NAME").body, "Take five, NAME!");
  auto post = c.request("POST", "/fun/NAME", {{"Content-Type", "text/plain"}}, "x");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("Allow"), "GET, HEAD, OPTIONS");
}

TEST_P(Demo, JsonPayload) {
  auto r = http_get(port(), "/json?name=X");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  const std::string prefix =
      R"({"status_code":200,"status_msg":"OK","message":"Take five, X!","timestamp":)";
  ASSERT_EQ(r.body.rfind(prefix, 0), 0u) << r.body;
  auto ms = std::stoll(r.body.substr(prefix.size()));
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  EXPECT_LT(std::llabs(now - ms), 60'000);
  EXPECT_EQ(r.body.back(), '}');
}

TEST_P(Demo, ErrorsAndMethods) {
  HttpConnection c(port());
  EXPECT_EQ(c.request("GET", "/nope").status, 404);
  auto post = c.request("POST", "/brubeck", {{"Content-Type", "text/plain"}}, "x");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("Allow"), "GET, HEAD, OPTIONS");
  auto options = c.request("OPTIONS", "/brubeck");
  EXPECT_EQ(options.status, 204);
  EXPECT_EQ(options.header("Allow"), "GET, HEAD, OPTIONS");
  auto head = c.request("HEAD", "/brubeck?name=ada");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("Content-Length"), "15");
  // The harness reads no body after a HEAD, so a body sent anyway would wait
  // on the socket: within a short poll none may arrive. (And the next reply
  // below would not parse.)
  EXPECT_FALSE(c.closed_by_peer(300ms));
  EXPECT_EQ(c.buffered(), 0u) << "bytes after the head of a HEAD reply";
  // A throwing handler gets a 500, and the same connection goes on.
  auto boom = c.request("GET", "/boom");
  EXPECT_EQ(boom.status, 500);
  EXPECT_FALSE(boom.body.empty());
  EXPECT_EQ(c.request("GET", "/brubeck?name=after").body, "Take five, after!");
  EXPECT_EQ(count_of(demo().output(), "boom: this handler always fails"), 1u);
}

TEST_P(Demo, HttpTenIsClosedAfterTheReply) {
  HttpConnection c(port());
  auto r = c.request("GET", "/brubeck?name=old", {}, "", /*http10=*/true);
  EXPECT_EQ(r.body, "Take five, old!");
  EXPECT_TRUE(c.closed_by_peer(3s));
  HttpConnection c2(port());
  auto r2 = c2.request("GET", "/brubeck", {{"Connection", "close"}});
  EXPECT_EQ(r2.status, 200);
  EXPECT_TRUE(c2.closed_by_peer(3s));
}

TEST_P(Demo, KeepAliveConnectionStaysOnOneShard) {
  std::set<std::string> shards_seen;
  // At least 8 connections, and more (bounded) until both shards served
  // one: a router that sent everything to one shard would fail here.
  for (int conn = 0; conn < 64 && (conn < 8 || shards_seen.size() < 2); ++conn) {
    HttpConnection c(port());
    std::set<std::string> shards;
    std::string conn_id;
    for (int i = 0; i < 10; ++i) {
      auto r = c.request("GET", "/shard");
      ASSERT_EQ(r.status, 200);
      // {"shard":K,"conn_id":"N","timestamp":...}
      auto shard = r.body.substr(0, r.body.find(",\"conn_id\""));
      auto id = r.body.substr(r.body.find("\"conn_id\""),
                              r.body.find(",\"timestamp\"") - r.body.find("\"conn_id\""));
      shards.insert(shard);
      if (conn_id.empty()) conn_id = id;
      EXPECT_EQ(id, conn_id) << "one connection, one Mongrel2 conn id";
    }
    EXPECT_EQ(shards.size(), 1u) << "requests of one connection went to several shards";
    shards_seen.insert(shards.begin(), shards.end());
  }
  EXPECT_EQ(shards_seen, (std::set<std::string>{R"({"shard":0)", R"({"shard":1)"}));
}

TEST_P(Demo, TwoHundredLongPollsWaitTogether) {
  constexpr int kClients = 200;
  std::vector<std::unique_ptr<HttpConnection>> conns;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kClients; ++i) {
    conns.push_back(std::make_unique<HttpConnection>(port(), 5s, 30s));
    conns.back()->send_raw("GET /feed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  }
  // Meanwhile other requests are served at once: the waits block no shard.
  auto quick = http_get(port(), "/brubeck?name=meanwhile");
  EXPECT_EQ(quick.body, "Take five, meanwhile!");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  int ok = 0;
  for (auto& c : conns) {
    auto r = c->read_response();
    if (r.status == 200 && r.header("Content-Type").rfind("text/plain", 0) == 0 &&
        r.body.size() == 21)
      ++ok;
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(ok, kClients);
  EXPECT_GE(elapsed, 2s);
  // One after another they would take 400 s; together, about 2 s.
  EXPECT_LT(elapsed, 20s);
}

// Header values are octets (RFC 9110 obs-text): Latin-1 and control bytes
// from old browsers, proxies and bots reach the handler as sent, and the
// JSON echo replaces only what is not UTF-8. (Mongrel2 itself answers 400
// to a DEL byte in a header, so none is sent here.)
TEST_P(Demo, HeaderBytesThatAreNotUtf8AreServed) {
  HttpConnection c(port());
  const std::string latin1 = "caf\xe9 \xff\xfe";
  auto r = c.request("GET", "/headers",
                     {{"User-Agent", "caf\xe9 \"q\" \\ \x01"},
                      {"Referer", "http://example.com/\xe9t\xe9"},
                      {"Cookie", "flavour=" + latin1},
                      {"X-Custom", "\x80\xc3 ok\tend"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_NE(r.body.find(R"("user-agent":"caf)" + fffd + R"( \"q\" \\ \u0001")"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find(R"("referer":"http://example.com/)" + fffd + "t" + fffd + "\""),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find(R"("cookie":"flavour=caf)" + fffd + " " + fffd + fffd + "\""),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find(R"("x-custom":")" + fffd + fffd + R"( ok\tend")"), std::string::npos)
      << r.body;
  // The same bytes on other routes: a plain reply, and the cookie parser.
  auto take = c.request("GET", "/brubeck?name=x", {{"User-Agent", "caf\xe9"}});
  EXPECT_EQ(take.status, 200);
  EXPECT_EQ(take.body, "Take five, x!");
  auto cookies = c.request("GET", "/cookies", {{"Cookie", "flavour=" + latin1}});
  EXPECT_EQ(cookies.status, 200) << cookies.body;
}

// What the demo echoes is the client's text: never served as HTML, never a
// redirect to another host, never a 500 for a value the API refuses.
TEST_P(Demo, ClientInputIsRefusedOrServedSafely) {
  HttpConnection c(port());
  auto xss = c.request("GET", "/brubeck?name=%3Cscript%3Ealert(1)%3C/script%3E");
  EXPECT_EQ(xss.status, 200);
  EXPECT_EQ(xss.header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(c.request("GET", "/redirect?to=/brubeck").header("Location"), "/brubeck");
  for (const char* target : {"/%09/evil.com", "/%0D%0ASet-Cookie:%20x=1", "//evil.com",
                             "/%5Cevil.com", "http://evil.com"}) {
    SCOPED_TRACE(target);
    auto r = c.request("GET", std::string("/redirect?to=") + target);
    EXPECT_EQ(r.status, 400);
    EXPECT_FALSE(r.has_header("Location"));
  }
  EXPECT_EQ(c.request("GET", "/cookies/set?flavour=a%20b").status, 400);
  EXPECT_EQ(c.request("GET", "/cookies/set?fla%3Bvour=mint").status, 400);
}

// A target in absolute form (as proxies send it) routes on its path.
TEST_P(Demo, AbsoluteFormTargetRoutesOnItsPath) {
  HttpConnection c(port());
  c.send_raw("GET http://127.0.0.1:" + std::to_string(port()) +
             "/brubeck?name=abs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Take five, abs!");
}

// HEAD of a streamed reply: the head only, and the connection goes on.
TEST_P(Demo, HeadOfAStreamHasNoBody) {
  HttpConnection c(port());
  c.send_raw("HEAD /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  auto head = c.read_response(/*head_request=*/true);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("Transfer-Encoding"), "chunked");
  EXPECT_TRUE(head.body.empty());
  // Any chunk sent after the head would be read as the next reply.
  auto next = c.request("GET", "/brubeck?name=next");
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, "Take five, next!");
}

// Until WebSockets are supported, an upgrade is refused and its connection
// closed (Mongrel2 has switched it to its WebSocket mode already).
TEST_P(Demo, WebSocketUpgradeIsRefusedAndClosed) {
  HttpConnection c(port());
  c.send_raw(
      "GET /brubeck HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(r.status, 501);
  EXPECT_TRUE(c.closed_by_peer(3s));
}

// A frame the handler cannot decode still has a sender and conn id: that
// connection gets a 400 and is closed, and one log line says why. A frame
// without them has nobody to answer: one log line.
TEST_P(Demo, MalformedFramesAreAnsweredAndLoggedOnce) {
  auto& push = extra_push_;
  push.send(zmq::str_buffer("no structure at all"), zmq::send_flags::none);
  push.send(zmq::str_buffer("54c6755b-9628-40a4-9a2d-cc82a816345e 77 /x 999:{},0:,"),
            zmq::send_flags::none);
  // The next request, through Mongrel2, is served as usual.
  auto r = http_get(port(), "/brubeck?name=next");
  EXPECT_EQ(r.body, "Take five, next!");
  // Logging is asynchronous to our reading: wait for the lines (bounded).
  for (int i = 0; i < 250 && (count_of(demo().output(), "without a valid sender") < 1 ||
                              count_of(demo().output(), "malformed request") < 1);
       ++i)
    std::this_thread::sleep_for(20ms);
  auto out = demo().output();
  EXPECT_EQ(count_of(out, "without a valid sender and conn id"), 1u) << out;
  EXPECT_EQ(count_of(out, "conn 77: 400 (malformed request: bad netstring length)"), 1u) << out;
}

TEST_P(Demo, SigtermStopsCleanlyAfterInFlightRequests) {
  HttpConnection c(port(), 5s, 10s);
  c.send_raw("GET /feed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  ASSERT_TRUE(await_output(demo(), "GET /feed started", 1));  // it waits in its fiber
  auto pid = demo().pid();
  ::kill(pid, SIGTERM);
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200) << "the in-flight long poll is answered before exit";
  auto code = demo().wait_for_exit(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_FALSE(pid_alive(pid));
}

// demo_mustache: a page from examples/templates/ with partials, the
// client's name escaped, and the 404 page from errors/404.mustache.
TEST_P(Demo, MustachePageAndTemplatedErrorPage) {
  HttpConnection c(port());
  auto r = c.request("GET", "/mustache?name=%3Cscript%3Ealert(%22x%22)%3C%2Fscript%3E&tag=a%26b");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(r.body.rfind("<!doctype html>", 0), 0u) << "the head partial:\n" << r.body;
  EXPECT_NE(r.body.find("<h1>Take five, &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;!</h1>"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(r.body.find("<script>"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("<li>a&amp;b</li>"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("</html>"), std::string::npos) << "the foot partial:\n" << r.body;
  auto plain = c.request("GET", "/mustache");
  EXPECT_NE(plain.body.find("Take five, dude!"), std::string::npos) << plain.body;
  EXPECT_EQ(plain.body.find("<ul>"), std::string::npos) << "no tags, no list:\n" << plain.body;

  auto missing = c.request("GET", "/no/such/page");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(missing.body.find("<h1>404 Not Found</h1>"), std::string::npos) << missing.body;
  EXPECT_NE(missing.body.find("Nothing here at <code>/no/such/page</code>"), std::string::npos)
      << missing.body;
  // The 500 page too, for a handler that fails.
  auto boom = c.request("GET", "/boom");
  EXPECT_EQ(boom.status, 500);
  EXPECT_NE(boom.body.find("<h1>500 Internal Server Error</h1>"), std::string::npos) << boom.body;
}

INSTANTIATE_TEST_SUITE_P(Protocols, Demo, ::testing::Values("json", "tnetstring"));

}  // namespace
}  // namespace brubeck::testing

namespace brubeck::testing {
namespace {

// With one shard there is no router thread: the shard pulls from Mongrel2.
TEST(SingleShard, ServesWaitsAndDrainsWithoutARouter) {
  DemoServer server({.args = {"--shards", "1", "--no-pin", "--log-level", "debug"}});
  auto& demo = server.demo();
  EXPECT_EQ(http_get(server.port(), "/brubeck?name=solo").body, "Take five, solo!");
  std::vector<std::unique_ptr<HttpConnection>> polls;
  for (int i = 0; i < 20; ++i) {
    polls.push_back(std::make_unique<HttpConnection>(server.port(), 5s, 30s));
    polls.back()->send_raw("GET /feed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  }
  ASSERT_TRUE(await_output(demo, "GET /feed started", 20)) << demo.output();
  ::kill(demo.pid(), SIGTERM);  // the 20 long polls are in flight
  int ok = 0;
  for (auto& c : polls) ok += c->read_response().status == 200;
  EXPECT_EQ(ok, 20);
  auto code = demo.wait_for_exit(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
}

}  // namespace
}  // namespace brubeck::testing

namespace brubeck::testing {
namespace {

// A client that goes away makes Mongrel2 send a disconnect notice; the shard
// cancels that connection's waiting fiber instead of finishing it.
TEST(Disconnect, CancelsTheWaitingRequest) {
  DemoServer server({.args = {"--shards", "2", "--no-pin", "--log-level", "debug"}});
  auto& demo = server.demo();
  {
    HttpConnection c(server.port());
    c.send_raw("GET /feed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    ASSERT_TRUE(await_output(demo, "GET /feed started", 1));  // it waits in its fiber
  }                                                           // closed by the client
  bool cancelled = false;
  for (int i = 0; i < 100 && !cancelled; ++i) {
    cancelled = demo.output().find("disconnected: 1 request(s) cancelled") != std::string::npos;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(cancelled) << demo.output();
  EXPECT_EQ(http_get(server.port(), "/brubeck?name=still").body, "Take five, still!");
  EXPECT_EQ(demo.stop(SIGTERM), 0);
}

}  // namespace
}  // namespace brubeck::testing

namespace brubeck::testing {
namespace {

// The demo behind a real Mongrel2 with limits low enough to reach through
// it (Mongrel2 itself answers 400 above about 4 KiB of headers): one shard,
// at most 2 requests in flight, 1 KiB of headers.
class Limits : public ::testing::Test {
 protected:
  void TearDown() override { server_.expect_clean_stop(); }
  int port() const { return server_.port(); }
  ChildProcess& demo() { return server_.demo(); }

  DemoServer server_{DemoOptions{.args = {"--shards", "1", "--no-pin", "--max-in-flight", "2",
                                          "--max-header-bytes", "1024", "--grace-ms", "300",
                                          "--log-level", "debug"}}};
};

TEST_F(Limits, OversizedHeadersAre431AndTheConnectionIsClosed) {
  HttpConnection c(port());
  auto r = c.request("GET", "/brubeck", {{"X-Padding", std::string(2048, 'p')}});
  EXPECT_EQ(r.status, 431);
  EXPECT_TRUE(c.closed_by_peer(3s));
  // Headers under the limit are served.
  EXPECT_EQ(http_get(port(), "/brubeck?name=small").body, "Take five, small!");
}

TEST_F(Limits, AFullShardAnswers503WithRetryAfterAndRecovers) {
  std::vector<std::unique_ptr<HttpConnection>> polls;
  for (int i = 0; i < 2; ++i) {
    polls.push_back(std::make_unique<HttpConnection>(port(), 5s, 30s));
    polls.back()->send_raw("GET /feed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  }
  ASSERT_TRUE(await_output(demo(), "GET /feed started", 2));  // the shard is full
  HttpConnection c(port());
  auto busy = c.request("GET", "/brubeck?name=third");
  EXPECT_EQ(busy.status, 503);
  EXPECT_EQ(busy.header("Retry-After"), "1");
  for (auto& p : polls) EXPECT_EQ(p->read_response().status, 200);
  // Room again: the same keep-alive connection is served.
  EXPECT_EQ(c.request("GET", "/brubeck?name=later").body, "Take five, later!");
}

// SIGTERM with a long poll (2 s) in flight and a 300 ms grace period: the
// process does not wait for it, says so, and the client gets a 503 and a
// closed connection instead of silence.
TEST_F(Limits, ARequestRunningPastTheGracePeriodIsAnswered503OnExit) {
  HttpConnection c(port(), 5s, 10s);
  c.send_raw("GET /feed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  ASSERT_TRUE(await_output(demo(), "GET /feed started", 1));
  ::kill(demo().pid(), SIGTERM);
  auto r = c.read_response();
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.header("Retry-After"), "1");
  EXPECT_TRUE(c.closed_by_peer(3s));
  auto code = demo().wait_for_exit(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(count_of(demo().output(), "1 requests still running after the grace period"), 1u)
      << demo().output();
}

// The live page (live_route = "/live" in the demo) and uPlot's files, built
// into the library from npm's (actors/live/node_modules, by
// deploy/install-deps): served byte for byte, with their content types.
TEST(LivePage, ServesUplotFromNodeModules) {
  DemoServer server;
  const auto dist = source_dir() + "/actors/live/node_modules/uplot/dist/";
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  };
  const auto js_file = read(dist + "uPlot.iife.min.js");
  ASSERT_FALSE(js_file.empty()) << "run deploy/install-deps (npm ci in actors/live)";
  auto js = http_get(server.port(), "/live/uplot.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.header("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(js.body, js_file);
  EXPECT_NE(js.body.find("uPlot"), std::string::npos);
  auto css = http_get(server.port(), "/live/uplot.css");
  EXPECT_EQ(css.status, 200);
  EXPECT_EQ(css.header("Content-Type"), "text/css; charset=utf-8");
  EXPECT_EQ(css.body, read(dist + "uPlot.min.css"));
  EXPECT_FALSE(css.body.empty());
  auto page = http_get(server.port(), "/live");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("src=\"/live/uplot.js\""), std::string::npos);
  EXPECT_NE(page.body.find("href=\"/live/uplot.css\""), std::string::npos);
  EXPECT_NE(page.body.find("data-metrics=\"/metrics\""), std::string::npos);
  EXPECT_EQ(page.body.find("{{"), std::string::npos) << "a placeholder left in the page";
  server.expect_clean_stop();
}

// Other paths: the page names the metrics route it is given (its script
// fetches that) and its files sit under its own route; the default paths
// serve nothing.
TEST(LivePage, FollowsTheConfiguredRoutes) {
  DemoServer server({.args = {"--metrics-route", "/admin/metrics", "--live-route", "/admin/live"}});
  auto page = http_get(server.port(), "/admin/live");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("data-metrics=\"/admin/metrics\""), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("src=\"/admin/live/uplot.js\""), std::string::npos);
  EXPECT_NE(page.body.find("href=\"/admin/live/uplot.css\""), std::string::npos);
  EXPECT_EQ(page.body.find("'/metrics'"), std::string::npos);
  EXPECT_EQ(http_get(server.port(), "/admin/live/uplot.js").status, 200);
  EXPECT_EQ(http_get(server.port(), "/admin/live/uplot.css").status, 200);
  auto metrics = http_get(server.port(), "/admin/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("brubeck_requests_total"), std::string::npos);
  EXPECT_EQ(http_get(server.port(), "/live").status, 404);
  EXPECT_EQ(http_get(server.port(), "/live/uplot.js").status, 404);
  server.expect_clean_stop();
}

// The page charts metrics_route: live_route without it stops the start,
// naming both settings.
TEST(LivePage, WithoutMetricsRouteTheStartFails) {
  auto [status, output] = run_process(binary_path("examples/brubeck_demo"),
                                      {"--metrics-route", "", "--live-route", "/live"}, 10s);
  EXPECT_EQ(status, 2) << output;
  EXPECT_NE(output.find("live_route = \"/live\" needs metrics_route"), std::string::npos) << output;
}

}  // namespace
}  // namespace brubeck::testing

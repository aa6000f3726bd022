// The actor layer end to end over real ZeroMQ sockets, with the test playing
// Mongrel2's two sockets (PUSH for requests, SUB for replies). Real Mongrel2
// runs in tests/integration; here frames can be exact, even malformed.
#include "brubeck/actors/app.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "brubeck/actors/router.hpp"
#include "brubeck/actors/shard.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"

namespace brubeck {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kSender = "54c6755b-9628-40a4-9a2d-cc82a816345e";

std::string request_frame(std::string_view conn_id, std::string_view path,
                          std::string_view method = "GET", std::string_view version = "HTTP/1.1",
                          std::string_view query = "") {
  std::string headers = R"({"PATH":")" + std::string(path) + R"(","METHOD":")" +
                        std::string(method) + R"(","VERSION":")" + std::string(version) +
                        R"(","URI":")" + std::string(path) + R"(","QUERY":")" + std::string(query) +
                        R"("})";
  return std::string(kSender) + " " + std::string(conn_id) + " " + std::string(path) + " " +
         std::to_string(headers.size()) + ":" + headers + ",0:,";
}

// Plays Mongrel2's side of the handler protocol.
class FakeMongrel2 {
 public:
  FakeMongrel2() : push_(ctx_, zmq::socket_type::push), sub_(ctx_, zmq::socket_type::sub) {
    push_.bind("tcp://127.0.0.1:*");
    sub_.bind("tcp://127.0.0.1:*");
    sub_.set(zmq::sockopt::subscribe, std::string(kSender));
    sub_.set(zmq::sockopt::rcvtimeo, 10000);
    push_.set(zmq::sockopt::linger, 0);
    sub_.set(zmq::sockopt::linger, 0);
  }
  std::string send_spec() { return push_.get(zmq::sockopt::last_endpoint); }
  // A bound SUB sends its subscription to a new connection only when its
  // owner touches it (Mongrel2's loop does so all the time): the shards wait
  // for that subscription before they take requests.
  void pump() { (void)sub_.get(zmq::sockopt::events); }
  std::string recv_spec() { return sub_.get(zmq::sockopt::last_endpoint); }
  void push(const std::string& frame) { push_.send(zmq::buffer(frame), zmq::send_flags::none); }
  // The next reply frame, or "" after the receive timeout.
  std::string receive() {
    zmq::message_t m;
    if (!sub_.recv(m)) return {};
    return m.to_string();
  }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t push_;
  zmq::socket_t sub_;
};

// conn id → body of its reply (for single-frame replies).
std::pair<std::string, std::string> split_reply(const std::string& frame) {
  // "SENDER LEN:ID, HTTP/1.1 ..."
  auto sp = frame.find(' ');
  auto colon = frame.find(':', sp);
  auto comma = frame.find(',', colon);
  auto id = frame.substr(colon + 1, comma - colon - 1);
  auto http = frame.substr(comma + 2);
  return {id, http};
}

std::string body_of(const std::string& http) {
  auto p = http.find("\r\n\r\n");
  return p == std::string::npos ? std::string() : http.substr(p + 4);
}

class ShardIndex : public WebMessageHandler {
 public:
  void get() override { set_body(std::to_string(message().shard_index())); }
};

class Sleepy : public WebMessageHandler {
 public:
  void get() override {
    this_fiber::sleep_for(200ms);
    set_body("slept");
  }
};

struct RunningApp {
  explicit RunningApp(FakeMongrel2& m2, std::size_t shards, std::function<void(App&)> setup = {})
      : RunningApp(m2, make_config(m2, shards), std::move(setup)) {}
  RunningApp(FakeMongrel2& m2, Config config, std::function<void(App&)> setup = {})
      : app(std::move(config)) {
    app.route<ShardIndex>("^/shard$");
    app.route<Sleepy>("^/sleep$");
    if (setup) setup(app);
    thread = std::thread([this] { code = app.run(); });
    for (int i = 0; i < 500 && !app.running() && !finished(); ++i) {
      m2.pump();
      std::this_thread::sleep_for(10ms);
    }
    // Subscriptions and connects settle asynchronously in ZeroMQ.
    std::this_thread::sleep_for(200ms);
  }
  ~RunningApp() { stop(); }
  int stop() {
    if (thread.joinable()) {
      app.stop();
      thread.join();
    }
    return code;
  }
  bool finished() const { return code != -1; }
  static Config make_config(FakeMongrel2& m2, std::size_t shards) {
    Config c;
    c.send_specs = {m2.send_spec()};
    c.recv_specs = {m2.recv_spec()};
    c.shards = shards;
    c.pin_threads = false;
    c.log_level = "error";
    c.grace = 3000ms;
    return c;
  }
  // Waits (bounded) until the shards have taken `n` requests in all: each
  // then runs in its fiber, so "in flight" is a fact, not a guess by time.
  bool await_requests(std::uint64_t n) const {
    for (int i = 0; i < 1000 && app.stats().requests < n; ++i) std::this_thread::sleep_for(5ms);
    return app.stats().requests >= n;
  }
  // Waits (bounded) until run() has returned.
  bool await_finished(std::chrono::milliseconds limit = 10s) const {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!finished() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(5ms);
    return finished();
  }
  App app;
  std::thread thread;
  std::atomic<int> code{-1};
};

std::string disconnect_frame(std::string_view conn_id) {
  return std::string(kSender) + " " + std::string(conn_id) +
         R"( @* 17:{"METHOD":"JSON"},21:{"type":"disconnect"},)";
}

TEST(App, RepliesThroughItsPubSocket) {
  FakeMongrel2 m2;
  RunningApp running(m2, 2);
  ASSERT_TRUE(running.app.running());
  m2.push(request_frame("5", "/shard"));
  auto reply = m2.receive();
  ASSERT_FALSE(reply.empty());
  EXPECT_EQ(reply.rfind(std::string(kSender) + " 1:5, HTTP/1.1 200 OK\r\n", 0), 0u) << reply;
  EXPECT_EQ(running.stop(), 0);
}

TEST(App, EveryConnectionStaysOnItsShard) {
  FakeMongrel2 m2;
  constexpr std::size_t kShards = 4;
  RunningApp running(m2, kShards);
  constexpr int kConns = 64, kPerConn = 5;
  for (int round = 0; round < kPerConn; ++round)
    for (int c = 1; c <= kConns; ++c) m2.push(request_frame(std::to_string(c), "/shard"));
  std::map<std::string, std::set<std::string>> shards_of;
  for (int i = 0; i < kConns * kPerConn; ++i) {
    auto reply = m2.receive();
    ASSERT_FALSE(reply.empty()) << "reply " << i << " missing";
    auto [id, http] = split_reply(reply);
    shards_of[id].insert(body_of(http));
  }
  std::set<std::string> used;
  for (const auto& [id, shards] : shards_of) {
    ASSERT_EQ(shards.size(), 1u) << "conn " << id << " was served by several shards";
    EXPECT_EQ(*shards.begin(), std::to_string(shard_for(kSender, id, kShards)));
    used.insert(*shards.begin());
  }
  EXPECT_EQ(shards_of.size(), static_cast<std::size_t>(kConns));
  EXPECT_EQ(used.size(), kShards) << "64 connections should reach all 4 shards";
}

// A socket read stops after a batch (64 frames); what is left must still be
// read although its ZMQ_FD, edge-triggered, never fires again for it.
void burst_larger_than_one_read(std::size_t shards) {
  FakeMongrel2 m2;
  RunningApp running(m2, shards);
  constexpr int kFrames = 1000;
  for (int c = 1; c <= kFrames; ++c) m2.push(request_frame(std::to_string(c), "/shard"));
  std::set<std::string> answered;
  for (int i = 0; i < kFrames; ++i) {
    auto reply = m2.receive();
    ASSERT_FALSE(reply.empty()) << "reply " << i << " of " << kFrames << " missing";
    answered.insert(split_reply(reply).first);
  }
  EXPECT_EQ(answered.size(), static_cast<std::size_t>(kFrames));
  EXPECT_EQ(running.stop(), 0);
}

TEST(App, ABurstLargerThanOneReadIsServedByALoneShard) { burst_larger_than_one_read(1); }
TEST(App, ABurstLargerThanOneReadIsServedThroughTheRouter) { burst_larger_than_one_read(2); }

// A frame whose sender and conn id can be read is answered, whatever else is
// wrong with it: 400 and a close, so no client waits for a reply that never
// comes. Only a frame with no readable sender and conn id goes unanswered.
TEST(App, MalformedFramesAreAnswered400AndTheNextIsServed) {
  FakeMongrel2 m2;
  RunningApp running(m2, 1);
  m2.push("garbage without structure");
  m2.push(std::string(kSender) + " 5 /shard 99:{\"PATH\":\"/shard\"},0:,");   // bad length
  m2.push(std::string(kSender) + " 6 /shard 2:[],0:,");                       // not an object
  m2.push(std::string(kSender) + " 11 /shard 16:{\"PATH\":\"/shard\"},0:,");  // no METHOD
  m2.push(std::string(kSender) + R"( 12 @* 17:{"METHOD":"JSON"},16:{"type":"hello"},)");
  m2.push(request_frame("7", "/shard"));
  for (std::string id : {"5", "6", "11"}) {
    SCOPED_TRACE(id);
    auto reply = m2.receive();
    ASSERT_FALSE(reply.empty());
    EXPECT_EQ(split_reply(reply).first, id);
    EXPECT_TRUE(split_reply(reply).second.starts_with("HTTP/1.1 400 "));
    EXPECT_NE(reply.find("Connection: close\r\n"), std::string::npos);
    EXPECT_EQ(m2.receive(),
              std::string(kSender) + " " + std::to_string(id.size()) + ":" + id + ", ");
  }
  // A socket message nothing handles: its connection is closed.
  EXPECT_EQ(m2.receive(), std::string(kSender) + " 2:12, ");
  auto reply = m2.receive();
  ASSERT_FALSE(reply.empty());
  EXPECT_EQ(split_reply(reply).first, "7");
  EXPECT_EQ(body_of(split_reply(reply).second), "0");
}

// A client that goes away cancels its request in flight: the notice itself
// is never answered, and neither is the cancelled request, ever.
TEST(App, DisconnectCancelsTheRequestInFlightAndIsNeverAnswered) {
  FakeMongrel2 m2;
  RunningApp running(m2, 1);
  // In one connection's order, as Mongrel2 sends them: the request is in
  // flight (registered when taken) by the time the notice is read.
  m2.push(request_frame("3", "/sleep"));
  m2.push(disconnect_frame("3"));
  m2.push(request_frame("4", "/shard"));
  auto reply = m2.receive();
  EXPECT_EQ(split_reply(reply).first, "4") << "the disconnect must not produce a reply";
  EXPECT_EQ(body_of(split_reply(reply).second), "0");
  // Conn 5 sleeps as long as conn 3 would have, on the same shard, starting
  // later: had conn 3's request gone on, its reply (or a close) would come
  // first. So the next frame is conn 5's, and nothing for conn 3 ever comes.
  m2.push(request_frame("5", "/sleep"));
  reply = m2.receive();
  ASSERT_FALSE(reply.empty());
  EXPECT_EQ(split_reply(reply).first, "5") << "a cancelled request was answered: " << reply;
  EXPECT_EQ(body_of(split_reply(reply).second), "slept");
  auto stats = running.app.stats();
  EXPECT_EQ(stats.disconnects, 1u);
  EXPECT_EQ(stats.cancelled, 1u);
  EXPECT_EQ(stats.requests, 3u);
  EXPECT_EQ(stats.replies, 2u);
  // A notice for a connection with nothing in flight cancels nothing.
  m2.push(disconnect_frame("4"));
  m2.push(request_frame("6", "/shard"));
  EXPECT_EQ(split_reply(m2.receive()).first, "6");
  EXPECT_EQ(running.app.stats().cancelled, 1u);
  EXPECT_EQ(running.app.stats().disconnects, 2u);
  EXPECT_EQ(running.stop(), 0);
}

TEST(App, HttpTenClosesAfterReplying) {
  FakeMongrel2 m2;
  RunningApp running(m2, 1);
  m2.push(request_frame("9", "/shard", "GET", "HTTP/1.0"));
  auto reply = m2.receive();
  EXPECT_NE(reply.find("Connection: close\r\n"), std::string::npos);
  auto close = m2.receive();
  EXPECT_EQ(close, std::string(kSender) + " 1:9, ");
}

TEST(App, SleepingRequestsOverlap) {
  FakeMongrel2 m2;
  RunningApp running(m2, 2);
  constexpr int kRequests = 200;
  auto start = std::chrono::steady_clock::now();
  for (int c = 0; c < kRequests; ++c) m2.push(request_frame(std::to_string(c + 100), "/sleep"));
  std::set<std::string> ids;
  for (int i = 0; i < kRequests; ++i) {
    auto reply = m2.receive();
    ASSERT_FALSE(reply.empty());
    EXPECT_EQ(body_of(split_reply(reply).second), "slept");
    ids.insert(split_reply(reply).first);
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kRequests));
  // 200 sleeps of 200 ms one after another would take 40 s.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST(App, StopLetsInFlightRequestsFinish) {
  FakeMongrel2 m2;
  RunningApp running(m2, 1);
  m2.push(request_frame("11", "/sleep"));
  ASSERT_TRUE(running.await_requests(1));  // the request is now in its fiber
  running.app.stop();
  auto reply = m2.receive();
  EXPECT_EQ(body_of(split_reply(reply).second), "slept");
  EXPECT_EQ(running.stop(), 0);
}

TEST(App, BadRoutePatternFailsStartWithCode2) {
  FakeMongrel2 m2;
  App app(RunningApp::make_config(m2, 1));
  app.route<ShardIndex>("^/(unclosed");
  EXPECT_EQ(app.run(), 2);
}

TEST(Router, ShardForSpreadsAndIsStable) {
  std::map<std::size_t, int> count;
  for (int i = 0; i < 4000; ++i) {
    auto id = std::to_string(i);
    auto k = shard_for(kSender, id, 4);
    EXPECT_EQ(k, shard_for(kSender, id, 4));
    ++count[k];
  }
  ASSERT_EQ(count.size(), 4u);
  for (auto [k, n] : count) EXPECT_GT(n, 800) << "shard " << k;
}

}  // namespace
}  // namespace brubeck

#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>

#include "brubeck/actors/ask.hpp"

namespace brubeck {
namespace {

using incr_atom = caf::atom_constant<caf::atom("incr")>;
using slow_atom = caf::atom_constant<caf::atom("slow")>;
using fail_atom = caf::atom_constant<caf::atom("fail")>;

// One counter for every shard; `slow` never answers in time, `fail` errors.
caf::behavior counter(caf::event_based_actor* self) {
  auto n = std::make_shared<std::int64_t>(0);
  return {
      [n](incr_atom) { return ++*n; },
      [self](slow_atom) -> caf::result<std::int64_t> {
        // Never delivered: the asker's deadline decides.
        return self->make_response_promise<std::int64_t>();
      },
      [](fail_atom) -> caf::result<std::int64_t> { return caf::sec::invalid_argument; },
  };
}

void register_counter(App& app) {
  app.actor("counter", [](caf::actor_system& sys) { return sys.spawn(counter); });
  app.route("^/count$", {Method::get}, [](WebMessageHandler& h) {
    h.set_body(std::to_string(ask<std::int64_t>(named_actor("counter"), 5s, incr_atom::value)));
  });
  app.route("^/slow$", {Method::get}, [](WebMessageHandler& h) {
    try {
      ask<std::int64_t>(named_actor("counter"), 100ms, slow_atom::value);
      h.set_body("answered");
    } catch (const Timeout&) {
      h.set_body("timeout");
    }
  });
  app.route("^/fail$", {Method::get}, [](WebMessageHandler& h) {
    try {
      ask<std::int64_t>(named_actor("counter"), 5s, fail_atom::value);
    } catch (const std::exception& e) {
      h.set_body(std::string("error: ") + e.what());
    }
  });
}

// Every shard asks the same actor: the values are one sequence, no gaps, no
// repeats, whichever shard each request ran on.
TEST(App, NamedActorIsSharedByAllShardsThroughAsk) {
  FakeMongrel2 m2;
  RunningApp running(m2, 3, register_counter);
  ASSERT_TRUE(running.app.running());
  constexpr int kRequests = 60;
  for (int c = 1; c <= kRequests; ++c) m2.push(request_frame(std::to_string(c), "/count"));
  std::set<int> values;
  for (int i = 0; i < kRequests; ++i) {
    auto reply = m2.receive();
    ASSERT_FALSE(reply.empty()) << "reply " << i << " missing";
    values.insert(std::stoi(body_of(split_reply(reply).second)));
  }
  EXPECT_EQ(values.size(), static_cast<std::size_t>(kRequests));
  EXPECT_EQ(*values.begin(), 1);
  EXPECT_EQ(*values.rbegin(), kRequests);
  EXPECT_EQ(running.stop(), 0);
}

TEST(App, AskTimesOutAndCarriesErrors) {
  FakeMongrel2 m2;
  RunningApp running(m2, 1, register_counter);
  m2.push(request_frame("1", "/slow"));
  EXPECT_EQ(body_of(split_reply(m2.receive()).second), "timeout");
  m2.push(request_frame("2", "/fail"));
  auto failed = body_of(split_reply(m2.receive()).second);
  EXPECT_EQ(failed.rfind("error: ", 0), 0u) << failed;
  m2.push(request_frame("3", "/count"));  // the shard and the actor carry on
  EXPECT_EQ(body_of(split_reply(m2.receive()).second), "1");
  EXPECT_EQ(running.stop(), 0);
}

}  // namespace
}  // namespace brubeck

namespace brubeck {
namespace {

// Back-pressure: a shard holds at most max_in_flight requests; the rest are
// answered 503 with Retry-After at once (never queued), and the first ones
// still finish. Oversized headers get 431.
TEST(App, FullShardAnswers503AndOversizedHeaders431) {
  FakeMongrel2 m2b;
  Config config = RunningApp::make_config(m2b, 1);
  config.max_in_flight = 2;
  config.max_header_bytes = 1024;
  App app(config);
  app.route<Sleepy>("^/sleep$");
  std::atomic<int> code{-1};
  std::thread thread([&] { code = app.run(); });
  for (int i = 0; i < 500 && !app.running(); ++i) {
    m2b.pump();
    std::this_thread::sleep_for(10ms);
  }
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(app.running());
  // Request 4 is HTTP/1.0: its 503, like every reply, closes the connection
  // (a client reading to the end of the stream would wait forever).
  for (int c = 1; c <= 5; ++c)
    m2b.push(request_frame(std::to_string(c), "/sleep", "GET", c == 4 ? "HTTP/1.0" : "HTTP/1.1"));
  std::map<std::string, std::string> replies;
  std::set<std::string> closed;
  while (replies.size() < 5) {
    auto reply = m2b.receive();
    ASSERT_FALSE(reply.empty());
    auto [id, http] = split_reply(reply);
    if (http.empty()) {
      closed.insert(id);
    } else {
      replies[id] = http;
    }
  }
  while (closed.empty()) {
    auto reply = m2b.receive();
    ASSERT_FALSE(reply.empty()) << "no close frame for the HTTP/1.0 request";
    auto [id, http] = split_reply(reply);
    ASSERT_TRUE(http.empty()) << reply;
    closed.insert(id);
  }
  EXPECT_EQ(closed, std::set<std::string>{"4"});
  EXPECT_NE(replies["4"].find("Connection: close\r\n"), std::string::npos) << replies["4"];
  EXPECT_EQ(replies["5"].find("Connection: close"), std::string::npos) << replies["5"];
  int ok = 0, busy = 0;
  for (auto& [id, http] : replies) {
    if (http.rfind("HTTP/1.1 200", 0) == 0) ++ok;
    if (http.rfind("HTTP/1.1 503", 0) == 0) {
      ++busy;
      EXPECT_NE(http.find("Retry-After: 1\r\n"), std::string::npos) << http;
    }
  }
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(busy, 3);

  std::string big_query(2000, 'q');
  m2b.push(request_frame("9", "/sleep", "GET", "HTTP/1.1", big_query));
  auto reply = m2b.receive();
  EXPECT_EQ(split_reply(reply).second.rfind("HTTP/1.1 431", 0), 0u) << reply;
  app.stop();
  thread.join();
  EXPECT_EQ(code.load(), 0);
}

}  // namespace
}  // namespace brubeck

namespace brubeck {
namespace {

// A shard that dies answers its in-flight requests 503 and is replaced; the
// other shard's requests never notice.
TEST(App, ADeadShardIsRestartedAndItsRequestsAnswered503) {
  FakeMongrel2 m2;
  RunningApp running(m2, 2, [](App& app) {
    app.route("^/die$", {Method::get}, [](WebMessageHandler&) {
      auto& self = detail::current_requester();
      caf::anon_send_exit(caf::actor_cast<caf::actor>(&self), caf::exit_reason::kill);
      this_fiber::sleep_for(5s);  // still in flight when the shard goes
    });
  });
  ASSERT_TRUE(running.app.running());
  // Connections of each shard.
  std::vector<std::string> on0, on1;
  for (int c = 1; on0.size() < 3 || on1.size() < 3; ++c)
    (shard_for(kSender, std::to_string(c), 2) == 0 ? on0 : on1).push_back(std::to_string(c));

  m2.push(request_frame(on1[0], "/sleep"));  // in flight on shard 1 when it dies
  m2.push(request_frame(on0[0], "/sleep"));  // shard 0: must not notice
  ASSERT_TRUE(running.await_requests(2));
  m2.push(request_frame(on1[1], "/die"));
  std::map<std::string, std::string> status_of;
  for (int i = 0; i < 8 && status_of.size() < 3; ++i) {
    auto reply = m2.receive();
    if (reply.empty()) break;
    auto [id, http] = split_reply(reply);
    if (!http.empty() && http.rfind("HTTP/1.1 ", 0) == 0) status_of[id] = http.substr(9, 3);
  }
  EXPECT_EQ(status_of[on1[0]], "503");
  EXPECT_EQ(status_of[on1[1]], "503");
  EXPECT_EQ(status_of[on0[0]], "200");
  // The replacement serves shard 1's connections again.
  std::string body;
  for (int attempt = 0; attempt < 20 && body != "1"; ++attempt) {
    std::this_thread::sleep_for(100ms);
    m2.push(request_frame(on1[2], "/shard"));
    auto reply = m2.receive();
    body = body_of(split_reply(reply).second);
  }
  EXPECT_EQ(body, "1");
  EXPECT_EQ(running.stop(), 0) << "a repaired shard is no failure";
}

}  // namespace
}  // namespace brubeck

namespace brubeck {
namespace {

// Frames for a shard that has died (still in its mailbox, or arriving before
// its replacement runs) are held by the router and served by the
// replacement: every request gets an answer, none is lost.
void frames_across_a_shard_death(std::size_t shards) {
  FakeMongrel2 m2;
  RunningApp running(m2, shards, [](App& app) {
    app.route("^/die$", {Method::get}, [](WebMessageHandler&) {
      auto& self = detail::current_requester();
      caf::anon_send_exit(caf::actor_cast<caf::actor>(&self), caf::exit_reason::kill);
      this_fiber::sleep_for(5s);
    });
  });
  ASSERT_TRUE(running.app.running());
  const std::size_t victim = shards - 1;
  std::vector<std::string> conns;  // the victim's connections
  for (int c = 1; conns.size() < 41; ++c)
    if (shard_for(kSender, std::to_string(c), shards) == victim) conns.push_back(std::to_string(c));

  m2.push(request_frame(conns[0], "/die"));
  // Spread over the death, the gap, and the replacement's first moments.
  for (std::size_t i = 1; i < conns.size(); ++i) {
    m2.push(request_frame(conns[i], "/shard"));
    m2.pump();
    std::this_thread::sleep_for(i < 10 ? 1ms : 10ms);
  }
  std::map<std::string, std::string> status_of, body_of_conn;
  while (status_of.size() < conns.size()) {
    auto reply = m2.receive();
    if (reply.empty()) break;  // 10 s without a reply: something was lost
    auto [id, http] = split_reply(reply);
    if (http.rfind("HTTP/1.1 ", 0) != 0) continue;
    status_of[id] = http.substr(9, 3);
    body_of_conn[id] = body_of(http);
  }
  EXPECT_EQ(status_of[conns[0]], "503");
  std::size_t served = 0, refused = 0;
  for (std::size_t i = 1; i < conns.size(); ++i) {
    const auto& status = status_of[conns[i]];
    if (status == "200") {
      ++served;
      EXPECT_EQ(body_of_conn[conns[i]], std::to_string(victim));
    } else if (status == "503") {
      ++refused;  // taken by the dying shard, answered on its way out
    } else {
      ADD_FAILURE() << "conn " << conns[i] << " (request " << i << "): no answer";
    }
  }
  EXPECT_EQ(served + refused, conns.size() - 1);
  EXPECT_GT(served, 0u);
  std::cout << "[ shard    ] " << shards << " shard(s): " << served
            << " served by the replacement, " << refused << " answered 503\n";
  EXPECT_EQ(running.stop(), 0);
}

TEST(App, FramesForADeadShardReachItsReplacement) { frames_across_a_shard_death(2); }
TEST(App, FramesForADeadLoneShardReachItsReplacement) { frames_across_a_shard_death(1); }

}  // namespace
}  // namespace brubeck

namespace brubeck {
namespace {

void add_die_route(App& app) {
  app.route("^/die$", {Method::get}, [](WebMessageHandler&) {
    auto& self = detail::current_requester();
    caf::anon_send_exit(caf::actor_cast<caf::actor>(&self), caf::exit_reason::kill);
    this_fiber::sleep_for(5s);  // still in flight when the shard goes
  });
}

// The status of conn `id`'s reply, skipping close frames; "" after the
// receive timeout.
std::string status_for(FakeMongrel2& m2, const std::string& id) {
  for (int i = 0; i < 10; ++i) {
    auto reply = m2.receive();
    if (reply.empty()) return {};
    auto [conn, http] = split_reply(reply);
    if (conn == id && http.rfind("HTTP/1.1 ", 0) == 0) return http.substr(9, 3);
  }
  return {};
}

// The supervisor restarts a dying shard, but not forever: App allows 5
// restarts of a shard within a minute, and at the 6th death run() stops
// and returns 1, for the service manager to restart the whole process.
TEST(App, AShardThatKeepsDyingMakesRunReturn1) {
  FakeMongrel2 m2;
  RunningApp running(m2, 1, add_die_route);
  ASSERT_TRUE(running.app.running());
  int deaths = 0;
  for (int c = 1; c <= 20 && !running.finished(); ++c) {
    SCOPED_TRACE("death " + std::to_string(c));
    auto id = std::to_string(c);
    m2.push(request_frame(id, "/die"));
    ASSERT_EQ(status_for(m2, id), "503") << "the request in flight on a dying shard";
    ++deaths;
    if (deaths == 6) break;
    // Until the limit, the replacement serves (requests wait for it).
    auto probe = std::to_string(100 + c);
    m2.push(request_frame(probe, "/shard"));
    ASSERT_EQ(status_for(m2, probe), "200");
    EXPECT_EQ(running.app.stats().restarts, static_cast<std::uint64_t>(deaths));
    EXPECT_FALSE(running.finished());
  }
  EXPECT_EQ(deaths, 6);
  ASSERT_TRUE(running.await_finished()) << "run() still serving after the 6th death";
  EXPECT_FALSE(running.app.running());
  EXPECT_EQ(running.stop(), 1);
}

// A request still running when the grace period ends does not hold the
// process: run() returns soon after the grace period, and the request's
// client is told (503, Retry-After, and the connection closed) rather than
// left waiting for a reply that will never come.
TEST(App, RequestsRunningPastTheGracePeriodAreAnswered503AndRunReturns) {
  FakeMongrel2 m2;
  Config config = RunningApp::make_config(m2, 1);
  config.grace = 300ms;
  RunningApp running(m2, config, [](App& app) {
    app.route("^/forever$", {Method::get}, [](WebMessageHandler& h) {
      this_fiber::sleep_for(60s);
      h.set_body("too late");
    });
  });
  m2.push(request_frame("21", "/forever"));
  m2.push(request_frame("22", "/sleep"));  // finishes within the grace period
  ASSERT_TRUE(running.await_requests(2));
  const auto stop_at = std::chrono::steady_clock::now();
  running.app.stop();
  std::map<std::string, std::string> http_of;
  std::set<std::string> closed;
  while (http_of.size() < 2 || closed.count("21") == 0) {
    auto reply = m2.receive();
    ASSERT_FALSE(reply.empty()) << "10 s without a reply; have " << http_of.size();
    auto [id, http] = split_reply(reply);
    if (http.empty())
      closed.insert(id);
    else
      http_of[id] = http;
  }
  EXPECT_EQ(body_of(http_of["22"]), "slept");
  EXPECT_EQ(http_of["21"].rfind("HTTP/1.1 503 ", 0), 0u) << http_of["21"];
  EXPECT_NE(http_of["21"].find("Retry-After: 1\r\n"), std::string::npos) << http_of["21"];
  EXPECT_NE(http_of["21"].find("Connection: close\r\n"), std::string::npos) << http_of["21"];
  EXPECT_EQ(closed, std::set<std::string>{"21"});
  ASSERT_TRUE(running.await_finished());
  // Far from the handler's 60 s: the grace period (300 ms) decided.
  EXPECT_LT(std::chrono::steady_clock::now() - stop_at, 10s);
  EXPECT_EQ(running.stop(), 0);
}

}  // namespace
}  // namespace brubeck

namespace brubeck {
namespace {

// A shard, started while the fake Mongrel2 is pumped (the shard waits for
// its subscription before it takes requests).
std::unique_ptr<Shard> start_shard(caf::actor_system& system, zmq::context_t& zmq, FakeMongrel2& m2,
                                   std::size_t index) {
  ShardOptions options;
  options.index = index;
  options.recv_specs = {m2.recv_spec()};
  options.pin = false;
  auto shard = std::make_unique<Shard>(system, zmq, options,
                                       std::vector<RouteSpec>{class_route<ShardIndex>("^/shard$")});
  auto started = std::async(std::launch::async, [&] { shard->start(); });
  while (started.wait_for(10ms) != std::future_status::ready) m2.pump();
  started.get();
  return shard;
}

// While a shard is down, the router holds its frames for the replacement,
// but at most max_held_frames: later ones are dropped and counted, never
// queued without bound. The replacement gets exactly the held ones, in order.
TEST(Router, FramesPastMaxHeldForADeadShardAreDroppedAndCounted) {
  // spdlog's registry is built by whichever thread logs first, inside the
  // uninstrumented libspdlog (tests/tsan.supp): build it here, before the
  // shard and router threads, as App does, so they all start after it.
  (void)spdlog::default_logger_raw();
  FakeMongrel2 m2;
  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("sharing"));
  cfg.set("scheduler.max-threads", std::size_t{1});
  caf::actor_system system{cfg};
  zmq::context_t zmq{1};
  constexpr std::size_t kHeld = 10, kSent = 25;
  std::vector<std::string> on0, on1;  // connections of each shard
  for (int c = 1; on0.size() < 2 || on1.size() < kSent + 1; ++c)
    (shard_for(kSender, std::to_string(c), 2) == 0 ? on0 : on1).push_back(std::to_string(c));
  {
    auto shard0 = start_shard(system, zmq, m2, 0);
    auto shard1 = start_shard(system, zmq, m2, 1);
    RouterOptions options{{m2.send_spec()}};
    options.max_held_frames = kHeld;
    Router router(system, zmq, options, {shard0->handle(), shard1->handle()});
    router.start();
    m2.push(request_frame(on0[0], "/shard"));
    ASSERT_EQ(body_of(split_reply(m2.receive()).second), "0");

    caf::anon_send_exit(shard1->handle(), caf::exit_reason::kill);
    shard1->join();  // its thread ends with its actor
    // One frame at a time, so each is a batch of its own and the count of
    // held frames is exact.
    for (std::size_t i = 0; i < kSent; ++i) {
      m2.push(request_frame(on1[i], "/shard"));
      for (int w = 0; w < 1000 && router.stats().frames < i + 2; ++w)
        std::this_thread::sleep_for(2ms);
      ASSERT_EQ(router.stats().frames, i + 2) << "the router did not take frame " << i;
    }
    EXPECT_EQ(router.stats().dropped, kSent - kHeld);
    // The other shard never notices.
    m2.push(request_frame(on0[1], "/shard"));
    EXPECT_EQ(split_reply(m2.receive()).first, on0[1]);

    auto replacement = start_shard(system, zmq, m2, 1);
    router.replace_shard(1, replacement->handle());
    for (std::size_t i = 0; i < kHeld; ++i) {
      auto reply = m2.receive();
      ASSERT_FALSE(reply.empty()) << "held frame " << i << " was not served";
      EXPECT_EQ(split_reply(reply).first, on1[i]);
      EXPECT_EQ(body_of(split_reply(reply).second), "1");
    }
    EXPECT_EQ(router.stats().replayed, kHeld);
    // Sent after every replayed frame, on the same shard: had a dropped one
    // been served, its reply would come first.
    m2.push(request_frame(on1[kSent], "/shard"));
    EXPECT_EQ(split_reply(m2.receive()).first, on1[kSent]);
    router.stop();
  }  // shards and router go before the actor system
}

// Mongrel2 spools a large body to a file and leaves it to the handler to
// delete: whatever the request's fate, the file must go.
class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/brubeck-spool-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    std::filesystem::create_directories(root_ / "tmp");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  Config config(FakeMongrel2& m2) {
    Config c = RunningApp::make_config(m2, 1);
    c.mongrel2_chroot = root_.string();
    return c;
  }
  // A spooled file as Mongrel2 leaves it; returns the path it reports.
  std::string spool(const std::string& name, std::size_t bytes) {
    std::ofstream(root_ / "tmp" / name, std::ios::binary) << std::string(bytes, 'u');
    return "/tmp/" + name;
  }
  bool exists(const std::string& reported) const {
    return std::filesystem::exists(root_ / std::filesystem::path(reported).relative_path());
  }
  // Waits (bounded) for the file to be deleted.
  bool gone(const std::string& reported) const {
    for (int i = 0; i < 200 && exists(reported); ++i) std::this_thread::sleep_for(10ms);
    return !exists(reported);
  }
  // Mongrel2's two frames of a large upload: "start" (file being written),
  // then "done" (both headers, equal).
  static std::string upload_frame(std::string_view conn_id, std::string_view path,
                                  const std::string& file, std::size_t bytes, bool done) {
    std::string headers =
        R"({"PATH":")" + std::string(path) + R"(","METHOD":"POST","VERSION":"HTTP/1.1","URI":")" +
        std::string(path) + R"(","content-length":")" + std::to_string(bytes) +
        R"(","content-type":"application/octet-stream","x-mongrel2-upload-start":")" + file + "\"" +
        (done ? R"(,"x-mongrel2-upload-done":")" + file + "\"" : "") + "}";
    return std::string(kSender) + " " + std::string(conn_id) + " " + std::string(path) + " " +
           std::to_string(headers.size()) + ":" + headers + ",0:,";
  }

  std::filesystem::path root_;
};

class UploadSize : public WebMessageHandler {
 public:
  void post() override { set_body(std::to_string(message().body().size())); }
};
class UploadThrows : public WebMessageHandler {
 public:
  void post() override { throw std::runtime_error("the handler failed"); }
};

void upload_routes(App& app) {
  app.route<UploadSize>("^/upload$");
  app.route<UploadThrows>("^/upload/throws$");
}

TEST_F(SpoolTest, ServedOrFailedTheSpoolFileIsDeleted) {
  FakeMongrel2 m2;
  RunningApp running(m2, config(m2), upload_routes);
  auto served = spool("upload.served", 30000);
  m2.push(upload_frame("31", "/upload", served, 30000, false));
  m2.push(upload_frame("31", "/upload", served, 30000, true));
  auto reply = m2.receive();
  EXPECT_EQ(body_of(split_reply(reply).second), "30000") << reply;
  EXPECT_TRUE(gone(served));

  auto failed = spool("upload.failed", 30000);
  m2.push(upload_frame("32", "/upload/throws", failed, 30000, false));
  m2.push(upload_frame("32", "/upload/throws", failed, 30000, true));
  reply = m2.receive();
  EXPECT_EQ(split_reply(reply).second.rfind("HTTP/1.1 500 ", 0), 0u) << reply;
  EXPECT_TRUE(gone(failed)) << "a handler that throws leaves the spool file behind";
  EXPECT_EQ(running.stop(), 0);
}

// A finished upload the shard refuses (full: 503) is nobody's to delete but
// the shard's: Mongrel2 has handed it over.
TEST_F(SpoolTest, AFinishedUploadRefusedByAFullShardIsDeleted) {
  FakeMongrel2 m2;
  Config c = config(m2);
  c.max_in_flight = 2;
  RunningApp running(m2, c, upload_routes);
  auto file = spool("upload.refused", 30000);
  m2.push(upload_frame("41", "/upload", file, 30000, false));  // accepted: no reply
  m2.push(request_frame("42", "/shard"));  // after the upload's admission, in fiber order
  EXPECT_EQ(split_reply(m2.receive()).first, "42");
  m2.push(request_frame("43", "/sleep"));
  m2.push(request_frame("44", "/sleep"));
  ASSERT_TRUE(running.await_requests(3));  // the shard is full
  m2.push(upload_frame("41", "/upload", file, 30000, true));
  auto reply = m2.receive();
  EXPECT_EQ(split_reply(reply).first, "41");
  EXPECT_EQ(split_reply(reply).second.rfind("HTTP/1.1 503 ", 0), 0u) << reply;
  EXPECT_TRUE(gone(file)) << "the refused upload's spool file was left behind";
  EXPECT_EQ(running.stop(), 0);
}

// ---------------------------------------------------------------- health

// Waits (bounded) until the App's readiness is `want`.
bool await_health(const App& app, Readiness want, std::chrono::milliseconds limit = 5s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (app.health().status != want && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  return app.health().status == want;
}

// The health route answers the readiness fact: 200 and "ready" once Mongrel2
// subscribed to every shard; while a SIGTERM-like stop drains a request in
// flight the fact is "draining" (the process no longer pulls requests, so
// the route itself is not reachable then: tests/integration shows that
// through real Mongrel2); after run(), "stopped".
TEST(Health, RouteAnswersReadyThenDrainingWhileARequestFinishes) {
  FakeMongrel2 m2;
  Config c = RunningApp::make_config(m2, 2);
  c.health_route = "/healthz";
  RunningApp running(m2, c, [](App& app) {
    app.route("^/long$", {Method::get}, [](WebMessageHandler& h) {
      this_fiber::sleep_for(800ms);
      h.set_body("long done");
    });
    app.route("^/.*$", {Method::get}, [](WebMessageHandler& h) { h.set_body("catch-all"); });
  });
  ASSERT_TRUE(await_health(running.app, Readiness::ready));
  m2.push(request_frame("7", "/healthz"));
  auto [id, http] = split_reply(m2.receive());
  EXPECT_EQ(id, "7");
  EXPECT_EQ(http.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << http;
  EXPECT_NE(http.find("Cache-Control: no-store\r\n"), std::string::npos) << http;
  EXPECT_EQ(body_of(http), R"({"status":"ready","shards":2,"alive":2,"subscribed":2})");

  m2.push(request_frame("8", "/long"));
  ASSERT_TRUE(running.await_requests(2));
  running.app.stop();
  ASSERT_TRUE(await_health(running.app, Readiness::draining, 2s));
  EXPECT_FALSE(running.app.health().ready());
  auto [long_id, long_http] = split_reply(m2.receive());
  EXPECT_EQ(long_id, "8");
  EXPECT_EQ(body_of(long_http), "long done") << "the drain lets the request finish";
  EXPECT_EQ(running.stop(), 0);
  EXPECT_EQ(running.app.health().status, Readiness::stopped);
}

// Off by default: the path is the application's like any other.
TEST(Health, NoRouteUnlessConfigured) {
  FakeMongrel2 m2;
  RunningApp running(m2, 1);
  ASSERT_TRUE(await_health(running.app, Readiness::ready));
  m2.push(request_frame("9", "/healthz"));
  auto [id, http] = split_reply(m2.receive());
  EXPECT_EQ(http.rfind("HTTP/1.1 404 ", 0), 0u) << http;
}

// Until Mongrel2 subscribes to the shards' replies the process is not
// ready (a reply would be lost); the subscription arriving later makes it
// ready without a restart.
TEST(Health, WaitsForMongrel2sSubscription) {
  FakeMongrel2 m2;  // its SUB sends the subscription only once pumped
  Config c = RunningApp::make_config(m2, 2);
  App app(c);
  std::atomic<int> code{-1};
  std::thread thread([&] { code = app.run(); });
  // The shards wait 3 s for a subscriber each, then serve without one: 6 s
  // or more for two (far more under TSan), so the bound is far above that.
  for (int i = 0; i < 3000 && !app.running(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(app.running());
  ASSERT_TRUE(await_health(app, Readiness::waiting_for_mongrel2, 1s));
  EXPECT_EQ(app.health().subscribed, 0u);
  EXPECT_EQ(app.health().alive, 2u);
  for (int i = 0; i < 300 && app.health().status != Readiness::ready; ++i) {
    m2.pump();
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(app.health().status, Readiness::ready);
  EXPECT_EQ(app.health().subscribed, 2u);
  app.stop();
  thread.join();
  EXPECT_EQ(code.load(), 0);
}

// A shard that computes without giving its thread back answers no
// heartbeat: after 2 s it counts as down (and systemd's watchdog is not
// fed); once it answers again the process is ready again.
TEST(Health, AWedgedShardIsDownUntilItAnswersAgain) {
  FakeMongrel2 m2;
  RunningApp running(m2, 2, [](App& app) {
    app.route("^/spin$", {Method::get}, [](WebMessageHandler& h) {
      const auto until = std::chrono::steady_clock::now() + 3500ms;
      while (std::chrono::steady_clock::now() < until) {
      }
      h.set_body("spun");
    });
  });
  ASSERT_TRUE(await_health(running.app, Readiness::ready));
  m2.push(request_frame("11", "/spin"));
  ASSERT_TRUE(await_health(running.app, Readiness::shard_down, 4s));
  EXPECT_EQ(running.app.health().alive, 1u);
  EXPECT_EQ(body_of(split_reply(m2.receive()).second), "spun");
  EXPECT_TRUE(await_health(running.app, Readiness::ready, 2s));
  EXPECT_EQ(running.stop(), 0);
}

// SIGTERM delivered to a thread the application started before run() (a
// database's, say), which does not block it: run() drains and returns 0
// instead of the process ending on the signal's default action.
TEST(App, SigtermCaughtByAThreadStartedBeforeRunStopsItCleanly) {
  FakeMongrel2 m2;
  std::atomic<pid_t> other_tid{0};
  std::atomic<bool> done{false};
  std::thread other([&] {
    other_tid = static_cast<pid_t>(::syscall(SYS_gettid));
    while (!done) std::this_thread::sleep_for(5ms);
  });
  RunningApp running(m2, 1);
  ASSERT_TRUE(running.app.running());
  while (other_tid == 0) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(::syscall(SYS_tgkill, ::getpid(), other_tid.load(), SIGTERM), 0);
  EXPECT_TRUE(running.await_finished(5s)) << "run() did not see the SIGTERM";
  EXPECT_EQ(running.stop(), 0);
  done = true;
  other.join();
}

}  // namespace
}  // namespace brubeck

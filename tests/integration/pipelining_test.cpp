// HTTP/1.1 pipelining through a real Mongrel2: several requests written at
// once on one keep-alive connection are answered in request order, whatever
// order their fibers finish in, and a later request's refusal or
// "Connection: close" waits for the earlier replies.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "harness.hpp"

namespace brubeck::testing {
namespace {

class Pipelining : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    server_.emplace(DemoOptions{.args = {"--shards", "2", "--no-pin", "--max-body-bytes", "4096"},
                                .protocol = GetParam()});
  }

  void TearDown() override {
    if (server_) server_->expect_clean_stop();
  }

  static std::string get(std::string_view path, std::string_view extra = "") {
    return "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + std::string(extra) +
           "\r\n";
  }

  int port() const { return server_->port(); }

  std::optional<DemoServer> server_;
};

// /feed answers after 2 s, /brubeck at once: the fast one still comes second.
TEST_P(Pipelining, ASlowReplyIsNotOvertaken) {
  HttpConnection c(port(), 5s, 15s);
  c.send_raw(get("/feed") + get("/brubeck?name=second"));
  auto first = c.read_response();
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body.size(), 21u) << first.body;  // a timestamp and a newline
  auto second = c.read_response();
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, "Take five, second!");
}

// A streamed reply (three chunks, 100 ms apart) is whole before the next
// reply starts, and a deferred reply keeps its place too.
TEST_P(Pipelining, StreamsAndDeferredRepliesKeepTheirPlace) {
  HttpConnection c(port(), 5s, 15s);
  c.send_raw(get("/stream") + get("/brubeck?name=a") + get("/later") + get("/brubeck?name=b"));
  auto stream = c.read_response();
  EXPECT_EQ(stream.header("Transfer-Encoding"), "chunked");
  EXPECT_EQ(stream.body, "chunk 1\nchunk 2\nchunk 3\n");
  EXPECT_EQ(c.read_response().body, "Take five, a!");
  EXPECT_EQ(c.read_response().body, "finished by another fiber\n");
  EXPECT_EQ(c.read_response().body, "Take five, b!");
}

// "Connection: close" on the second request closes only after both replies;
// a refusal (413 here) of a later request waits its turn as well.
TEST_P(Pipelining, CloseAndRefusalsWaitForEarlierReplies) {
  {
    HttpConnection c(port(), 5s, 15s);
    c.send_raw(get("/later") + get("/brubeck?name=last", "Connection: close\r\n"));
    EXPECT_EQ(c.read_response().body, "finished by another fiber\n");
    auto last = c.read_response();
    EXPECT_EQ(last.body, "Take five, last!");
    EXPECT_EQ(last.header("Connection"), "close");
    EXPECT_TRUE(c.closed_by_peer(3s));
  }
  {
    HttpConnection c(port(), 5s, 15s);
    const std::string big(5000, 'x');
    c.send_raw(get("/later") + "POST /args HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " +
               "application/x-www-form-urlencoded\r\nContent-Length: " +
               std::to_string(big.size()) + "\r\n\r\n" + big);
    EXPECT_EQ(c.read_response().body, "finished by another fiber\n");
    EXPECT_EQ(c.read_response().status, 413);
    EXPECT_TRUE(c.closed_by_peer(3s));
  }
}

INSTANTIATE_TEST_SUITE_P(Protocols, Pipelining, ::testing::Values("json", "tnetstring"));

}  // namespace
}  // namespace brubeck::testing

// Deferred, streamed and delivered replies, through a recording channel.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "brubeck/handlers/dispatch.hpp"
#include "handlers/test_support.hpp"

namespace brubeck {
namespace {

using testing::make_request;

struct Recorder : ReplyChannel {
  struct Sent {
    std::vector<std::string> ids;
    std::string bytes;
  };
  std::vector<Sent> sent;
  void send(std::string_view, std::span<const std::string_view> conn_ids,
            std::string_view bytes) override {
    sent.push_back({{conn_ids.begin(), conn_ids.end()}, std::string(bytes)});
  }
};

std::optional<DeferredReply> parked;

class Parks : public WebMessageHandler {
 public:
  void get() override { parked.emplace(defer()); }
};

class Streams : public WebMessageHandler {
 public:
  void get() override {
    start_stream();
    write_chunk("hello ");
    write_chunk("");  // ignored: an empty chunk would end the stream
    write_chunk("world");
    // finish_stream left to the framework
  }
};

class StreamsThenThrows : public WebMessageHandler {
 public:
  void get() override {
    start_stream();
    write_chunk("partial");
    throw std::runtime_error("mid-stream failure");
  }
};

class Delivers : public WebMessageHandler {
 public:
  void get() override {
    std::vector<std::string> ids;
    for (int i = 0; i < 150; ++i) ids.push_back(std::to_string(i));
    std::vector<std::string_view> views(ids.begin(), ids.end());
    deliver(views, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    set_body("delivered");
  }
};

RouteTable routes() {
  std::vector<RouteSpec> specs;
  specs.push_back(class_route<Parks>("^/park$"));
  specs.push_back(class_route<Streams>("^/stream$"));
  specs.push_back(class_route<StreamsThenThrows>("^/broken$"));
  specs.push_back(class_route<Delivers>("^/deliver$"));
  return RouteTable(std::move(specs));
}

const HandlerSettings kSettings;

TEST(Reply, DeferredIsSentOnlyWhenFinished) {
  Recorder ch;
  auto t = routes();
  auto d = dispatch(t, make_request("GET", "/park"), kSettings, &ch);
  EXPECT_TRUE(d.sent);
  EXPECT_TRUE(ch.sent.empty());
  ASSERT_TRUE(parked.has_value());
  Response r;
  r.body = "later";
  parked->finish(std::move(r));
  ASSERT_EQ(ch.sent.size(), 1u);
  EXPECT_EQ(ch.sent[0].ids, std::vector<std::string>{"42"});
  EXPECT_EQ(ch.sent[0].bytes, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nlater");
  EXPECT_THROW(parked->finish(Response{}), std::logic_error);
  parked.reset();
  EXPECT_EQ(ch.sent.size(), 1u);
}

TEST(Reply, DroppedDeferredAnswers500) {
  Recorder ch;
  auto t = routes();
  dispatch(t, make_request("GET", "/park"), kSettings, &ch);
  parked.reset();
  ASSERT_EQ(ch.sent.size(), 1u);
  EXPECT_EQ(ch.sent[0].bytes.rfind("HTTP/1.1 500 ", 0), 0u);
}

TEST(Reply, DeferredOnHttp10ClosesAfterwards) {
  Recorder ch;
  auto t = routes();
  dispatch(t, make_request("GET", "/park", {}, {}, "HTTP/1.0"), kSettings, &ch);
  parked->finish(Response{});
  parked.reset();
  ASSERT_EQ(ch.sent.size(), 2u);
  EXPECT_NE(ch.sent[0].bytes.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(ch.sent[1].bytes, "");
}

TEST(Reply, StreamIsChunkedAndFinishedByTheFramework) {
  Recorder ch;
  auto t = routes();
  auto d = dispatch(t, make_request("GET", "/stream"), kSettings, &ch);
  EXPECT_TRUE(d.sent);
  ASSERT_EQ(ch.sent.size(), 4u);
  EXPECT_EQ(ch.sent[0].bytes, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(ch.sent[1].bytes, "6\r\nhello \r\n");
  EXPECT_EQ(ch.sent[2].bytes, "5\r\nworld\r\n");
  EXPECT_EQ(ch.sent[3].bytes, "0\r\n\r\n");
}

// HEAD gets the head a GET would get, and no chunk: not even the last one.
TEST(Reply, HeadOfAStreamSendsTheHeadOnly) {
  Recorder ch;
  auto t = routes();
  auto d = dispatch(t, make_request("HEAD", "/stream"), kSettings, &ch);
  EXPECT_TRUE(d.sent);
  ASSERT_EQ(ch.sent.size(), 1u);
  EXPECT_EQ(ch.sent[0].bytes, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");

  Recorder closing;
  dispatch(t, make_request("HEAD", "/stream", {}, {}, "HTTP/1.0"), kSettings, &closing);
  ASSERT_EQ(closing.sent.size(), 2u);
  EXPECT_NE(closing.sent[0].bytes.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(closing.sent[1].bytes, "") << "closed after the head";
}

TEST(Reply, StreamCutByAnErrorIsClosedNotFinished) {
  Recorder ch;
  auto t = routes();
  dispatch(t, make_request("GET", "/broken"), kSettings, &ch);
  ASSERT_EQ(ch.sent.size(), 3u);
  EXPECT_EQ(ch.sent[1].bytes, "7\r\npartial\r\n");
  EXPECT_EQ(ch.sent[2].bytes, "") << "closed, without the last chunk";
}

TEST(Reply, DeliverReachesEveryId) {
  Recorder ch;
  auto t = routes();
  auto d = dispatch(t, make_request("GET", "/deliver"), kSettings, &ch);
  EXPECT_FALSE(d.sent);
  EXPECT_EQ(d.response.body, "delivered");
  ASSERT_EQ(ch.sent.size(), 1u);  // the channel chunks per 100 ids itself
  EXPECT_EQ(ch.sent[0].ids.size(), 150u);
}

TEST(Reply, WithoutAChannelTheseThrowAndBecome500) {
  auto t = routes();
  auto d = dispatch(t, make_request("GET", "/stream"), kSettings);
  EXPECT_EQ(d.response.status, 500);
}

}  // namespace
}  // namespace brubeck

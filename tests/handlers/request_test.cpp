#include "brubeck/handlers/request.hpp"

#include <gtest/gtest.h>

#include "handlers/test_support.hpp"

namespace brubeck {
namespace {

using testing::make_request;

TEST(Request, ExposesMongrel2Fields) {
  auto r = make_request("GET", "/a/b", "x=1", {{"host", "example"}});
  EXPECT_EQ(r.method(), "GET");
  EXPECT_EQ(r.path(), "/a/b");
  EXPECT_EQ(r.version(), "HTTP/1.1");
  EXPECT_EQ(r.uri(), "/a/b?x=1");
  EXPECT_EQ(r.query_string(), "x=1");
  EXPECT_EQ(r.conn_id(), "42");
}

TEST(Request, HeaderLookupIgnoresCaseAndKeepsRepeats) {
  auto r = make_request("GET", "/", {}, {{"accept", "a"}, {"x-thing", "1"}, {"X-Thing", "2"}});
  EXPECT_EQ(r.header("ACCEPT").value_or(""), "a");
  EXPECT_FALSE(r.header("missing").has_value());
  EXPECT_EQ(r.header_or("missing", "dflt"), "dflt");
  auto all = r.header_values("x-THING");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], "1");
  EXPECT_EQ(all[1], "2");
}

TEST(Request, QueryArgumentsAreDecodedAndEmptyOnesDropped) {
  auto r = make_request("GET", "/", "name=ada+lovelace&x=%41%2f&empty=&name=b&bad=%zz&noeq");
  const auto& args = r.query_arguments();
  ASSERT_EQ(args.size(), 4u);
  EXPECT_EQ(args[0], (std::pair<std::string, std::string>{"name", "ada lovelace"}));
  EXPECT_EQ(args[1], (std::pair<std::string, std::string>{"x", "A/"}));
  EXPECT_EQ(args[2], (std::pair<std::string, std::string>{"name", "b"}));
  EXPECT_EQ(args[3], (std::pair<std::string, std::string>{"bad", "%zz"}));
}

TEST(Request, ShouldCloseFollowsVersionAndConnectionHeader) {
  EXPECT_FALSE(make_request("GET", "/").should_close());
  EXPECT_TRUE(make_request("GET", "/", {}, {{"connection", "close"}}).should_close());
  EXPECT_TRUE(make_request("GET", "/", {}, {}, "HTTP/1.0").should_close());
  EXPECT_FALSE(
      make_request("GET", "/", {}, {{"connection", "Keep-Alive"}}, "HTTP/1.0").should_close());
}

TEST(UrlDecode, HandlesTruncatedEscapes) {
  EXPECT_EQ(url_decode("%"), "%");
  EXPECT_EQ(url_decode("%4"), "%4");
  EXPECT_EQ(url_decode("a%20b+c"), "a b c");
}

// An absolute-form target routes on its path (RFC 9112 §3.2.2).
TEST(Request, AbsoluteFormTargetGivesItsPath) {
  EXPECT_EQ(origin_path("/brubeck"), "/brubeck");
  EXPECT_EQ(origin_path("http://127.0.0.1:6767/brubeck"), "/brubeck");
  EXPECT_EQ(origin_path("HTTPS://example.org/a/b"), "/a/b");
  EXPECT_EQ(origin_path("http://example.org"), "/");
  EXPECT_EQ(origin_path("//127.0.0.1:6767/brubeck"), "/brubeck");  // as Mongrel2 sends it
  EXPECT_EQ(origin_path("//h"), "/");
  EXPECT_EQ(origin_path("http://example.org?x=1"), "/");
  EXPECT_EQ(origin_path("*"), "*");
  EXPECT_EQ(origin_path("example.org:443"), "example.org:443");  // authority form
  EXPECT_EQ(origin_path("1http://x/y"), "1http://x/y");
  EXPECT_EQ(origin_path(""), "");
  EXPECT_EQ(testing::make_request("GET", "http://h:1/shard").path(), "/shard");
}

}  // namespace
}  // namespace brubeck

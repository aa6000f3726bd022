#include "brubeck/handlers/response.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include "brubeck/handlers/json.hpp"

namespace brubeck {
namespace {

TEST(Response, SerializesWithExactContentLength) {
  Response r;
  r.add_header("Content-Type", "text/plain");
  r.add_header("Content-Length", "999");  // ignored: the framework computes it
  r.body = "Hello, World!";
  std::string out;
  r.serialize(out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, "
            "World!");
}

TEST(Response, HeadKeepsLengthDropsBody) {
  Response r;
  r.body = "12345";
  std::string out;
  r.serialize(out, false);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
}

TEST(Response, NoContentHasNoBody) {
  Response r;
  r.status = 204;
  r.body = "ignored";
  std::string out;
  r.serialize(out);
  EXPECT_EQ(out, "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST(Response, RefusesHeaderInjection) {
  Response r;
  EXPECT_THROW(r.add_header("X-A", "v\r\nSet-Cookie: evil=1"), std::invalid_argument);
  EXPECT_THROW(r.add_header("X-A", "v\n"), std::invalid_argument);
  EXPECT_THROW(r.add_header("Bad Name", "v"), std::invalid_argument);
  EXPECT_THROW(r.add_header("", "v"), std::invalid_argument);
  EXPECT_TRUE(r.headers.empty());
}

TEST(Response, ReasonPhrases) {
  EXPECT_EQ(reason_phrase(404), "Not Found");
  EXPECT_EQ(reason_phrase(405), "Method Not Allowed");
  EXPECT_EQ(reason_phrase(299), "Unknown");
  auto e = error_response(404);
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.body, "404 Not Found\n");
}

TEST(Json, EscapesAndAlwaysParses) {
  const std::string inputs[] = {"plain",
                                "quote\" back\\slash",
                                "ctl\x01\x1f\n\t\r\b\f",
                                "utf8 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xb7",
                                "bad \xff\xfe utf8 \xc3",
                                "overlong \xc0\xaf",
                                "surrogate \xed\xa0\x80",
                                std::string("nul\0x", 5)};
  simdjson::dom::parser parser;
  for (const auto& in : inputs) {
    auto text = json_string(in);
    auto doc = parser.parse(text);
    ASSERT_FALSE(doc.error()) << text;
    std::string_view back;
    ASSERT_FALSE(doc.get_string().get(back));
    bool valid_input = simdjson::validate_utf8(in.data(), in.size());
    if (valid_input) {
      EXPECT_EQ(back, in);
    }
  }
  EXPECT_EQ(json_string("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(json_string(std::string("\x01", 1)), "\"\\u0001\"");
}

}  // namespace
}  // namespace brubeck

#include "brubeck/pipeline/codec.hpp"

#include "brubeck/pipeline/detail/flat_json.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/json_reference.hpp"

namespace brubeck {

// Readable failures: gtest finds this by ADL.
void PrintTo(DecodeError e, std::ostream* os) { *os << to_string(e); }

namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;
using Pairs = std::vector<std::pair<std::string, std::string>>;

// The three frames captured from Mongrel2 1.12.2, verbatim (docs/architecture.md, "The wire").
constexpr std::string_view kJsonFrame =
    R"(14ba3fad-a4e3-42f8-8ab4-4a60a8c33806 2 /some/path 314:{"PATH":"/some/path","x-forwarded-for":"127.0.0.1","content-type":"application/json","content-length":"7","accept":"*/*","user-agent":"curl/7.88.1","host":"127.0.0.1:6767","METHOD":"POST","VERSION":"HTTP/1.1","URI":"/some/path?x=1&y=2","QUERY":"x=1&y=2","PATTERN":"/","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"},7:{"a":1},)";
constexpr std::string_view kDisconnectFrame =
    R"(14ba3fad-a4e3-42f8-8ab4-4a60a8c33806 1 @* 17:{"METHOD":"JSON"},21:{"type":"disconnect"},)";
constexpr std::string_view kTnetFrame =
    "b6b2b9a6-2a5d-4c6e-9d0b-3b7f1f0a1c11 1 /tnet "
    "231:11:REMOTE_ADDR,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTERN,5:/tnet,3:URI,"
    "5:/tnet,7:VERSION,8:HTTP/1.1,4:PATH,5:/tnet,4:host,14:127.0.0.1:6767,10:user-agent,11:curl/"
    "7.88.1,6:accept,3:*/*,15:x-forwarded-for,9:127.0.0.1,}0:,";

constexpr std::string_view kSender = "14ba3fad-a4e3-42f8-8ab4-4a60a8c33806";

std::string netstring(std::string_view payload, char tag = ',') {
  return std::to_string(payload.size()) + ":" + std::string(payload) + tag;
}

std::string make_frame(std::string_view headers, std::string_view body = "", char headers_tag = ',',
                       std::string_view conn_id = "7", std::string_view path = "/p") {
  return std::string(kSender) + " " + std::string(conn_id) + " " + std::string(path) + " " +
         netstring(headers, headers_tag) + netstring(body);
}

Pairs pairs(const Frame& f) {
  Pairs out;
  for (const auto& h : f.headers) out.emplace_back(h.name, h.value);
  return out;
}

DecodeError decode(std::string_view bytes) {
  FrameDecoder decoder;
  Frame frame;
  return decoder.decode(bytes, frame);
}

// Replaces the first occurrence of `from`; the test fails if it is absent.
std::string replaced(std::string_view s, std::string_view from, std::string_view to) {
  std::string out(s);
  const auto at = out.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) out.replace(at, from.size(), to);
  return out;
}

TEST(Codec, DecodesCapturedJsonRequest) {
  FrameDecoder decoder;
  Frame f;
  ASSERT_EQ(decoder.decode(kJsonFrame, f), DecodeError::ok);
  EXPECT_EQ(f.sender, kSender);
  EXPECT_EQ(f.conn_id, "2");
  EXPECT_EQ(f.path, "/some/path");
  EXPECT_EQ(f.body, R"({"a":1})");
  EXPECT_EQ(f.kind, FrameKind::http);
  EXPECT_EQ(pairs(f), (Pairs{{"PATH", "/some/path"},
                             {"x-forwarded-for", "127.0.0.1"},
                             {"content-type", "application/json"},
                             {"content-length", "7"},
                             {"accept", "*/*"},
                             {"user-agent", "curl/7.88.1"},
                             {"host", "127.0.0.1:6767"},
                             {"METHOD", "POST"},
                             {"VERSION", "HTTP/1.1"},
                             {"URI", "/some/path?x=1&y=2"},
                             {"QUERY", "x=1&y=2"},
                             {"PATTERN", "/"},
                             {"URL_SCHEME", "http"},
                             {"REMOTE_ADDR", "127.0.0.1"}}));
  EXPECT_TRUE(f.upload_start.empty());
  EXPECT_TRUE(f.upload_done.empty());
  // Views point into the caller's bytes, not into a copy.
  EXPECT_EQ(f.sender.data(), kJsonFrame.data());
  EXPECT_EQ(f.body.data() + f.body.size() + 1, kJsonFrame.data() + kJsonFrame.size());
}

TEST(Codec, DecodesCapturedDisconnect) {
  FrameDecoder decoder;
  Frame f;
  ASSERT_EQ(decoder.decode(kDisconnectFrame, f), DecodeError::ok);
  EXPECT_EQ(f.sender, kSender);
  EXPECT_EQ(f.conn_id, "1");
  EXPECT_EQ(f.path, "@*");
  EXPECT_EQ(f.body, R"({"type":"disconnect"})");
  EXPECT_EQ(f.kind, FrameKind::disconnect);
  EXPECT_EQ(pairs(f), (Pairs{{"METHOD", "JSON"}}));
  EXPECT_TRUE(f.upload_start.empty());
  EXPECT_TRUE(f.upload_done.empty());
}

TEST(Codec, DecodesCapturedTnetstringRequest) {
  FrameDecoder decoder;
  Frame f;
  ASSERT_EQ(decoder.decode(kTnetFrame, f), DecodeError::ok);
  EXPECT_EQ(f.sender, "b6b2b9a6-2a5d-4c6e-9d0b-3b7f1f0a1c11");
  EXPECT_EQ(f.conn_id, "1");
  EXPECT_EQ(f.path, "/tnet");
  EXPECT_EQ(f.body, "");
  EXPECT_EQ(f.kind, FrameKind::http);
  EXPECT_EQ(pairs(f), (Pairs{{"REMOTE_ADDR", "127.0.0.1"},
                             {"METHOD", "GET"},
                             {"URL_SCHEME", "http"},
                             {"PATTERN", "/tnet"},
                             {"URI", "/tnet"},
                             {"VERSION", "HTTP/1.1"},
                             {"PATH", "/tnet"},
                             {"host", "127.0.0.1:6767"},
                             {"user-agent", "curl/7.88.1"},
                             {"accept", "*/*"},
                             {"x-forwarded-for", "127.0.0.1"}}));
}

TEST(Codec, JsonArrayBecomesRepeatedHeaders) {
  const std::string frame = make_frame(
      R"({"cookie":["a=1","b=2","c=3"],"host":"h","empty":[],"x":["only"],"METHOD":"GET"})");
  FrameDecoder decoder;
  Frame f;
  ASSERT_EQ(decoder.decode(frame, f), DecodeError::ok);
  EXPECT_EQ(pairs(f), (Pairs{{"cookie", "a=1"},
                             {"cookie", "b=2"},
                             {"cookie", "c=3"},
                             {"host", "h"},
                             {"x", "only"},
                             {"METHOD", "GET"}}));
  ASSERT_NE(f.find("cookie"), nullptr);
  EXPECT_EQ(f.find("cookie")->value, "a=1");
}

TEST(Codec, TnetstringListBecomesRepeatedHeaders) {
  const std::string dict = netstring("cookie") +
                           netstring(netstring("a=1") + netstring("b=2"), ']') + netstring("host") +
                           netstring("h") + netstring("none") + netstring("", ']');
  FrameDecoder decoder;
  Frame f;
  const std::string frame = make_frame(dict, "body", '}');
  ASSERT_EQ(decoder.decode(frame, f), DecodeError::ok);
  EXPECT_EQ(pairs(f), (Pairs{{"cookie", "a=1"}, {"cookie", "b=2"}, {"host", "h"}}));
  EXPECT_EQ(f.body, "body");
}

TEST(Codec, EmptyHeaderContainersAreValid) {
  FrameDecoder decoder;
  Frame f;
  const std::string json = make_frame("{}");
  const std::string tnet = make_frame("", "", '}');
  ASSERT_EQ(decoder.decode(json, f), DecodeError::ok);
  EXPECT_TRUE(f.headers.empty());
  ASSERT_EQ(decoder.decode(tnet, f), DecodeError::ok);
  EXPECT_TRUE(f.headers.empty());
}

TEST(Codec, JsonEscapesAreUnescaped) {
  const std::string frame = make_frame(
      R"({"x-q":"a\"b\\c\/d","x-u":"caf\u00e9 \ud83d\ude00","x-c":"l1\nl2\tt","k\u0041":"v"})");
  FrameDecoder decoder;
  Frame f;
  ASSERT_EQ(decoder.decode(frame, f), DecodeError::ok);
  EXPECT_EQ(pairs(f), (Pairs{{"x-q", "a\"b\\c/d"},
                             {"x-u", "caf\xC3\xA9 \xF0\x9F\x98\x80"},
                             {"x-c", "l1\nl2\tt"},
                             {"kA", "v"}}));
}

// Headers without escapes are views into the frame's own bytes: decoding
// copies none of them.
TEST(Codec, PlainHeadersPointIntoTheFrame) {
  FrameDecoder decoder;
  Frame f;
  ASSERT_EQ(decoder.decode(kJsonFrame, f), DecodeError::ok);
  auto inside = [&](std::string_view v) {
    return v.data() >= kJsonFrame.data() &&
           v.data() + v.size() <= kJsonFrame.data() + kJsonFrame.size();
  };
  ASSERT_EQ(f.headers.size(), 14u);
  for (const auto& h : f.headers) {
    EXPECT_TRUE(inside(h.name)) << h.name;
    EXPECT_TRUE(inside(h.value)) << h.name;
  }
  EXPECT_EQ(f.unescaped, nullptr);
}

// Unescaped text lives in a buffer the Frame shares: a copy, or the frame
// after its decoder has moved on to other frames, still reads it.
TEST(Codec, UnescapedHeadersOutliveTheDecodersNextFrame) {
  const std::string escaped = make_frame(R"({"x-q":"a\"b","x-list":["1\t","2"],"k":"v"})");
  FrameDecoder decoder;
  Frame f;
  ASSERT_EQ(decoder.decode(escaped, f), DecodeError::ok);
  Frame copy = f;
  Frame next;
  ASSERT_EQ(decoder.decode(kJsonFrame, next), DecodeError::ok);
  // Names and values without escapes are views into the frame's bytes,
  // which (as Frame says) must outlive it: kept in a variable.
  const std::string third = make_frame(R"({"x-z":"\u0041\u0042"})");
  ASSERT_EQ(decoder.decode(third, next), DecodeError::ok);
  f = Frame{};
  EXPECT_EQ(pairs(copy), (Pairs{{"x-q", "a\"b"}, {"x-list", "1\t"}, {"x-list", "2"}, {"k", "v"}}));
  EXPECT_EQ(pairs(next), (Pairs{{"x-z", "AB"}}));
}

// Array elements must be strings, on the fast path as on the escaped one.
TEST(Codec, NonStringHeaderValuesAreRejected) {
  for (const char* headers :
       {R"({"a":["b",1]})", R"({"a":["b",null]})", R"({"a":[["b"]]})", R"({"a":1})",
        R"({"a":{"b":"c"}})", R"({"a\n":["b",1]})", R"({"a":"b" "c":"d"})", R"({"a":"b",})"})
    EXPECT_EQ(decode(make_frame(headers)), DecodeError::bad_headers) << headers;
}

TEST(Codec, WhitespaceInJsonHeadersIsAccepted) {
  const std::string frame = make_frame(" { \"a\" : \"b\" ,\n\"c\":[ \"d\" ] }\n ");
  FrameDecoder decoder;
  Frame f;
  ASSERT_EQ(decoder.decode(frame, f), DecodeError::ok);
  EXPECT_EQ(pairs(f), (Pairs{{"a", "b"}, {"c", "d"}}));
}

TEST(Codec, UploadMarkers) {
  FrameDecoder decoder;
  Frame f;
  const std::string first = make_frame(
      R"({"content-length":"99999","x-mongrel2-upload-start":"/tmp/upload.AbCd","METHOD":"POST"})");
  ASSERT_EQ(decoder.decode(first, f), DecodeError::ok);
  EXPECT_EQ(f.upload_start, "/tmp/upload.AbCd");
  EXPECT_EQ(f.upload_done, "");
  EXPECT_EQ(f.body, "");

  const std::string done = make_frame(
      R"({"x-mongrel2-upload-start":"/tmp/upload.AbCd","x-mongrel2-upload-done":"/tmp/upload.AbCd","METHOD":"POST"})");
  ASSERT_EQ(decoder.decode(done, f), DecodeError::ok);
  EXPECT_EQ(f.upload_start, "/tmp/upload.AbCd");
  EXPECT_EQ(f.upload_done, "/tmp/upload.AbCd");
  EXPECT_EQ(f.kind, FrameKind::http);

  // A plain request afterwards must not inherit the markers.
  ASSERT_EQ(decoder.decode(kJsonFrame, f), DecodeError::ok);
  EXPECT_EQ(f.upload_start, "");
  EXPECT_EQ(f.upload_done, "");
}

TEST(Codec, FrameKinds) {
  FrameDecoder decoder;
  Frame f;
  const std::string json_msg = make_frame(R"({"METHOD":"JSON"})", R"({"type":"msg","x":1})");
  ASSERT_EQ(decoder.decode(json_msg, f), DecodeError::ok);
  EXPECT_EQ(f.kind, FrameKind::json);

  const std::string json_not_object = make_frame(R"({"METHOD":"JSON"})", R"(["disconnect"])");
  ASSERT_EQ(decoder.decode(json_not_object, f), DecodeError::ok);
  EXPECT_EQ(f.kind, FrameKind::json);

  // A body that is not JSON at all is still a JSON message, not a decode error.
  const std::string json_garbage = make_frame(R"({"METHOD":"JSON"})", R"({"type":)");
  ASSERT_EQ(decoder.decode(json_garbage, f), DecodeError::ok);
  EXPECT_EQ(f.kind, FrameKind::json);

  const std::string disconnect_spaced =
      make_frame(R"({"METHOD":"JSON"})", R"({ "id": 3, "type" : "disconnect" })");
  ASSERT_EQ(decoder.decode(disconnect_spaced, f), DecodeError::ok);
  EXPECT_EQ(f.kind, FrameKind::disconnect);

  // Only METHOD JSON makes a disconnect.
  const std::string http_lookalike = make_frame(R"({"METHOD":"POST"})", R"({"type":"disconnect"})");
  ASSERT_EQ(decoder.decode(http_lookalike, f), DecodeError::ok);
  EXPECT_EQ(f.kind, FrameKind::http);

  const std::string xml = make_frame(R"({"METHOD":"XML"})", "<ping/>");
  ASSERT_EQ(decoder.decode(xml, f), DecodeError::ok);
  EXPECT_EQ(f.kind, FrameKind::xml);
  EXPECT_EQ(f.body, "<ping/>");

  const std::string tnet_disconnect =
      make_frame(netstring("METHOD") + netstring("JSON"), R"({"type":"disconnect"})", '}');
  ASSERT_EQ(decoder.decode(tnet_disconnect, f), DecodeError::ok);
  EXPECT_EQ(f.kind, FrameKind::disconnect);

  const std::string no_method = make_frame(R"({"host":"h"})");
  ASSERT_EQ(decoder.decode(no_method, f), DecodeError::ok);
  EXPECT_EQ(f.kind, FrameKind::http);
}

TEST(Codec, FindReturnsFirstExactMatch) {
  FrameDecoder decoder;
  Frame f;
  const std::string frame = make_frame(R"({"a":["1","2"],"A":"3","ab":"4"})");
  ASSERT_EQ(decoder.decode(frame, f), DecodeError::ok);
  ASSERT_NE(f.find("a"), nullptr);
  EXPECT_EQ(f.find("a")->value, "1");
  EXPECT_EQ(f.find("a"), &f.headers[0]);
  ASSERT_NE(f.find("A"), nullptr);
  EXPECT_EQ(f.find("A")->value, "3");
  EXPECT_EQ(f.find("b"), nullptr);
  EXPECT_EQ(f.find(""), nullptr);
}

TEST(Codec, ToStringIsStable) {
  EXPECT_EQ(to_string(DecodeError::ok), "ok");
  EXPECT_EQ(to_string(DecodeError::truncated), "truncated");
  EXPECT_EQ(to_string(DecodeError::bad_sender), "bad sender");
  EXPECT_EQ(to_string(DecodeError::bad_conn_id), "bad conn id");
  EXPECT_EQ(to_string(DecodeError::bad_path), "bad path");
  EXPECT_EQ(to_string(DecodeError::bad_netstring_length), "bad netstring length");
  EXPECT_EQ(to_string(DecodeError::missing_terminator), "missing terminator");
  EXPECT_EQ(to_string(DecodeError::bad_headers), "bad headers");
  EXPECT_EQ(to_string(DecodeError::trailing_bytes), "trailing bytes");
}

TEST(CodecErrors, NetstringLengthTooLong) {
  // Past the end of the input.
  EXPECT_EQ(decode(replaced(kJsonFrame, "314:", "999:")), DecodeError::bad_netstring_length);
  EXPECT_EQ(decode(replaced(kJsonFrame, "7:{\"a\"", "9:{\"a\"")),
            DecodeError::bad_netstring_length);
  // Exactly to the end: only the terminator is missing, as in a cut frame.
  EXPECT_EQ(decode(replaced(kJsonFrame, "7:{\"a\"", "8:{\"a\"")), DecodeError::truncated);
  // Still inside the input: the byte where the terminator should be is not one.
  EXPECT_EQ(decode(replaced(kJsonFrame, "314:", "315:")), DecodeError::missing_terminator);
  EXPECT_EQ(decode(replaced(kDisconnectFrame, "17:", "18:")), DecodeError::missing_terminator);
}

TEST(CodecErrors, NetstringLengthTooShort) {
  EXPECT_EQ(decode(replaced(kJsonFrame, "7:{\"a\"", "6:{\"a\"")), DecodeError::missing_terminator);
  EXPECT_EQ(decode(replaced(kJsonFrame, "314:", "300:")), DecodeError::missing_terminator);
  // One short lands on the object's closing '}', which is the tnetstring dict
  // tag; the framing check then stops at the real ',' where a length belongs.
  EXPECT_EQ(decode(replaced(kJsonFrame, "314:", "313:")), DecodeError::bad_netstring_length);
}

TEST(CodecErrors, NetstringLengthNotDigits) {
  EXPECT_EQ(decode(replaced(kJsonFrame, "314:", "3a4:")), DecodeError::bad_netstring_length);
  EXPECT_EQ(decode(replaced(kJsonFrame, "314:", "+314:")), DecodeError::bad_netstring_length);
  EXPECT_EQ(decode(replaced(kJsonFrame, "314:", "-314:")), DecodeError::bad_netstring_length);
  EXPECT_EQ(decode(replaced(kJsonFrame, "314:", " 314:")), DecodeError::bad_netstring_length);
  EXPECT_EQ(decode(replaced(kJsonFrame, "314:", ":")), DecodeError::bad_netstring_length);
  EXPECT_EQ(decode(replaced(kJsonFrame, "314:", "0314:")), DecodeError::bad_netstring_length);
  EXPECT_EQ(decode(replaced(kJsonFrame, "7:{\"a\"", "x:{\"a\"")),
            DecodeError::bad_netstring_length);
  // Eleven digits: rejected before any arithmetic could overflow.
  EXPECT_EQ(decode(replaced(kJsonFrame, "314:", "00000000314:")),
            DecodeError::bad_netstring_length);
  EXPECT_EQ(decode(replaced(kJsonFrame, "314:", "99999999999999999999999:")),
            DecodeError::bad_netstring_length);
  EXPECT_EQ(decode(replaced(kJsonFrame, "314:", "9999999999:")), DecodeError::bad_netstring_length);
}

TEST(CodecErrors, MissingTerminator) {
  std::string body_tag(kJsonFrame);
  body_tag.back() = ';';
  EXPECT_EQ(decode(body_tag), DecodeError::missing_terminator);
  // The body takes ',' only, even though '}' is fine for the headers.
  body_tag.back() = '}';
  EXPECT_EQ(decode(body_tag), DecodeError::missing_terminator);
  EXPECT_EQ(decode(replaced(kJsonFrame, "},7:", "}]7:")), DecodeError::missing_terminator);
  EXPECT_EQ(decode(replaced(kTnetFrame, "}0:,", ",0:,")), DecodeError::bad_headers);
}

TEST(CodecErrors, BadConnId) {
  EXPECT_EQ(decode(replaced(kJsonFrame, " 2 ", " 2a ")), DecodeError::bad_conn_id);
  EXPECT_EQ(decode(replaced(kJsonFrame, " 2 ", " abc ")), DecodeError::bad_conn_id);
  EXPECT_EQ(decode(replaced(kJsonFrame, " 2 ", " -2 ")), DecodeError::bad_conn_id);
  EXPECT_EQ(decode(replaced(kJsonFrame, " 2 ", "  ")), DecodeError::bad_conn_id);
  EXPECT_EQ(decode(replaced(kJsonFrame, " 2 ", " 123456789012345678901 ")),
            DecodeError::bad_conn_id);
  EXPECT_EQ(decode(replaced(kJsonFrame, " 2 ", " 12345678901234567890 ")), DecodeError::ok);
}

TEST(CodecErrors, BadSender) {
  EXPECT_EQ(decode(" " + std::string(kJsonFrame.substr(kSender.size()))), DecodeError::bad_sender);
  EXPECT_EQ(decode(" 2 /p 2:{},0:,"), DecodeError::bad_sender);
  EXPECT_EQ(decode(replaced(kJsonFrame, "14ba3fad",
                            "14ba\x01"
                            "fad")),
            DecodeError::bad_sender);
  EXPECT_EQ(decode(replaced(kJsonFrame, "14ba3fad",
                            "14ba\x7f"
                            "fad")),
            DecodeError::bad_sender);
  EXPECT_EQ(decode(replaced(kJsonFrame, "14ba3fad",
                            "14ba\xc3\xa9"
                            "fad")),
            DecodeError::bad_sender);
  EXPECT_EQ(decode(replaced(kJsonFrame, "14ba3fad", "14ba\tfad")), DecodeError::bad_sender);
  EXPECT_EQ(decode(std::string(128, 's') + " 2 /p 2:{},0:,"), DecodeError::ok);
  EXPECT_EQ(decode(std::string(129, 's') + " 2 /p 2:{},0:,"), DecodeError::bad_sender);
  EXPECT_EQ(decode(std::string(5000, 's')), DecodeError::bad_sender);
}

TEST(CodecErrors, BadPath) {
  EXPECT_EQ(decode(replaced(kJsonFrame, " /some/path ", "  ")), DecodeError::bad_path);
}

TEST(CodecErrors, TrailingBytes) {
  EXPECT_EQ(decode(std::string(kJsonFrame) + "\n"), DecodeError::trailing_bytes);
  EXPECT_EQ(decode(std::string(kJsonFrame) + "0:,"), DecodeError::trailing_bytes);
  EXPECT_EQ(decode(std::string(kTnetFrame) + '\0'), DecodeError::trailing_bytes);
  EXPECT_EQ(decode(std::string(kDisconnectFrame) + " "), DecodeError::trailing_bytes);
}

TEST(CodecErrors, HeadersOfTheWrongShape) {
  EXPECT_EQ(decode(make_frame(R"(["METHOD","GET"])")), DecodeError::bad_headers);
  EXPECT_EQ(decode(make_frame(R"("METHOD")")), DecodeError::bad_headers);
  EXPECT_EQ(decode(make_frame("42")), DecodeError::bad_headers);
  EXPECT_EQ(decode(make_frame("")), DecodeError::bad_headers);
  EXPECT_EQ(decode(make_frame("   ")), DecodeError::bad_headers);
  EXPECT_EQ(decode(make_frame(R"({"content-length":7})")), DecodeError::bad_headers);
  EXPECT_EQ(decode(make_frame(R"({"a":"b","content-length":7.5})")), DecodeError::bad_headers);
  EXPECT_EQ(decode(make_frame(R"({"a":null})")), DecodeError::bad_headers);
  EXPECT_EQ(decode(make_frame(R"({"a":true})")), DecodeError::bad_headers);
  EXPECT_EQ(decode(make_frame(R"({"a":{"b":"c"}})")), DecodeError::bad_headers);
  EXPECT_EQ(decode(make_frame(R"({"a":["b",1]})")), DecodeError::bad_headers);
  EXPECT_EQ(decode(make_frame(R"({"a":["b",["c"]]})")), DecodeError::bad_headers);
}

TEST(CodecErrors, MalformedJsonHeaders) {
  const std::string_view cases[] = {
      R"({"a":"b")",       R"({"a":"b",})",   R"({"a" "b"})",  R"({"a":})",       R"({a:"b"})",
      R"({"a":"b}")",      R"({"a":"b"} x)",  R"({"a":"b"}})", R"({"a":"b"}{})",  R"({"a":"b"},)",
      R"({"a":["b")",      R"({"a":["b",]})", R"({"a":"\x"})", R"({"a":"\u12"})",
      "{\"a\":\"b\"}\0"sv,  // NUL after the object
                            // Raw bytes inside strings are not malformed: Mongrel2 sends them
                            // (RawHeaderBytesAsMongrel2SendsThem).
  };
  for (const std::string_view bad : cases) {
    EXPECT_EQ(decode(make_frame(bad)), DecodeError::bad_headers) << bad;
  }
}

TEST(CodecErrors, MalformedTnetstringHeaders) {
  const auto bad = [](const std::string& dict) { return decode(make_frame(dict, "", '}')); };
  EXPECT_EQ(bad(netstring("a")), DecodeError::bad_headers);  // key without a value
  EXPECT_EQ(bad(netstring("a") + "1:5#"), DecodeError::bad_headers);
  EXPECT_EQ(bad(netstring("a") + "4:true!"), DecodeError::bad_headers);
  EXPECT_EQ(bad(netstring("a") + "0:~"), DecodeError::bad_headers);
  EXPECT_EQ(bad(netstring("a") + netstring(netstring("b") + netstring("c"), '}')),
            DecodeError::bad_headers);
  EXPECT_EQ(bad("1:5#" + netstring("v")), DecodeError::bad_headers);  // key not a string
  EXPECT_EQ(bad(netstring("a") + netstring(netstring("b") + "1:5#", ']')),
            DecodeError::bad_headers);
  EXPECT_EQ(bad(netstring("a") + "5:b,"), DecodeError::bad_headers);
  EXPECT_EQ(bad(netstring("a") + "1:b"), DecodeError::bad_headers);
  EXPECT_EQ(bad(netstring("a") + "x:b,"), DecodeError::bad_headers);
  EXPECT_EQ(bad(netstring("a") + "01:b,"), DecodeError::bad_headers);
  EXPECT_EQ(bad("{\"a\":\"b\"}"), DecodeError::bad_headers);
}

// Each prefix is copied into a buffer of exactly its size so that ASan sees
// any read past the end.
void expect_every_prefix_rejected(std::string_view frame) {
  FrameDecoder decoder;
  Frame f;
  for (std::size_t n = 0; n < frame.size(); ++n) {
    auto buf = std::make_unique<char[]>(n == 0 ? 1 : n);
    std::memcpy(buf.get(), frame.data(), n);
    const DecodeError e = decoder.decode(std::string_view(buf.get(), n), f);
    EXPECT_NE(e, DecodeError::ok) << "prefix length " << n;
  }
  EXPECT_EQ(decoder.decode(frame, f), DecodeError::ok);
}

TEST(CodecErrors, EveryPrefixIsRejected) {
  expect_every_prefix_rejected(kJsonFrame);
  expect_every_prefix_rejected(kDisconnectFrame);
  expect_every_prefix_rejected(kTnetFrame);
}

TEST(CodecErrors, TruncationAtFieldBoundaries) {
  EXPECT_EQ(decode(""), DecodeError::truncated);
  EXPECT_EQ(decode(kJsonFrame.substr(0, 10)), DecodeError::truncated);
  EXPECT_EQ(decode(kJsonFrame.substr(0, kSender.size())), DecodeError::truncated);
  EXPECT_EQ(decode(kJsonFrame.substr(0, kSender.size() + 1)), DecodeError::truncated);
  EXPECT_EQ(decode(kJsonFrame.substr(0, kSender.size() + 2)), DecodeError::truncated);
  EXPECT_EQ(decode(kJsonFrame.substr(0, kSender.size() + 3)), DecodeError::truncated);
  EXPECT_EQ(decode(kJsonFrame.substr(0, kSender.size() + 8)), DecodeError::truncated);
  const auto headers_at = kJsonFrame.find("314:");
  EXPECT_EQ(decode(kJsonFrame.substr(0, headers_at)), DecodeError::truncated);
  EXPECT_EQ(decode(kJsonFrame.substr(0, headers_at + 2)), DecodeError::truncated);
  EXPECT_EQ(decode(kJsonFrame.substr(0, headers_at + 4)), DecodeError::bad_netstring_length);
  // Everything but a terminator is there.
  EXPECT_EQ(decode(kJsonFrame.substr(0, headers_at + 4 + 314)), DecodeError::truncated);
  EXPECT_EQ(decode(kJsonFrame.substr(0, headers_at + 4 + 315)), DecodeError::truncated);
  EXPECT_EQ(decode(kJsonFrame.substr(0, kJsonFrame.size() - 1)), DecodeError::truncated);
}

TEST(CodecErrors, RandomMutationsNeverCrash) {
  std::mt19937 rng(12345);
  FrameDecoder decoder;
  Frame f;
  const std::string_view seeds[] = {kJsonFrame, kDisconnectFrame, kTnetFrame};
  const char interesting[] = {'\0', ' ', ':', ',', '}', ']', '{', '[', '"', '\\', '0', '9', '\xff'};
  int ok = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string s(seeds[round % 3]);
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits && !s.empty(); ++k) {
      const std::size_t at = rng() % s.size();
      switch (rng() % 4) {
        case 0:
          s[at] = interesting[rng() % sizeof interesting];
          break;
        case 1:
          s[at] = static_cast<char>(rng());
          break;
        case 2:
          s.erase(at, 1 + rng() % 3);
          break;
        default:
          s.insert(at, 1, interesting[rng() % sizeof interesting]);
      }
    }
    auto buf = std::make_unique<char[]>(s.size() + 1);
    std::memcpy(buf.get(), s.data(), s.size());
    const std::string_view bytes(buf.get(), s.size());
    const DecodeError e = decoder.decode(bytes, f);
    // A long-lived decoder and a fresh one agree (nothing leaks between frames).
    FrameDecoder fresh;
    Frame again;
    ASSERT_EQ(fresh.decode(bytes, again), e);
    ASSERT_EQ(pairs(again), pairs(f));
    // Every frame with a readable sender and conn id gets an answer.
    const auto action = frame_action(bytes, e, f);
    ASSERT_EQ(action == FrameAction::drop, !peek_route_key(bytes)) << s;
    if (e != DecodeError::ok) {
      ASSERT_TRUE(f.headers.empty() && f.sender.empty() && f.body.empty());
      continue;
    }
    ++ok;
    // What decoded points into the input (or the frame's unescaped buffer).
    auto inside = [&](std::string_view v) {
      return v.empty() ||
             (v.data() >= bytes.data() && v.data() + v.size() <= bytes.data() + bytes.size());
    };
    ASSERT_TRUE(inside(f.sender) && inside(f.conn_id) && inside(f.path) && inside(f.body));
    for (const auto& h : f.headers) ASSERT_TRUE(f.unescaped || (inside(h.name) && inside(h.value)));
  }
  // Some mutations (inside header values) keep the frame valid.
  EXPECT_GT(ok, 0);
}

TEST(Codec, DecoderReuseAcrossSizes) {
  FrameDecoder decoder;
  Frame f;
  const std::string big_value(6000, 'v');
  const std::string big = make_frame(R"({"x-big":")" + big_value + R"(","METHOD":"GET"})", "b1");
  const std::string small = make_frame(R"({"a":"b"})", "b2");
  const std::string small_broken = make_frame(R"({"a":"b")");
  std::string bigger_value(20000, 'w');
  const std::string bigger = make_frame(
      R"({"x-bigger":[")" + bigger_value + R"(","z"],"x-mongrel2-upload-start":"/u"})", "b3");

  for (int round = 0; round < 50; ++round) {
    ASSERT_EQ(decoder.decode(small, f), DecodeError::ok);
    EXPECT_EQ(pairs(f), (Pairs{{"a", "b"}}));
    EXPECT_EQ(f.body, "b2");

    ASSERT_EQ(decoder.decode(big, f), DecodeError::ok);
    ASSERT_EQ(f.headers.size(), 2u);
    EXPECT_EQ(f.headers[0].value, big_value);
    EXPECT_EQ(f.headers[1].value, "GET");
    EXPECT_EQ(f.body, "b1");

    // Right after a longer document, the scratch buffer still holds its tail.
    ASSERT_EQ(decoder.decode(small_broken, f), DecodeError::bad_headers);
    EXPECT_TRUE(f.headers.empty());

    ASSERT_EQ(decoder.decode(kTnetFrame, f), DecodeError::ok);
    EXPECT_EQ(f.headers.size(), 11u);

    ASSERT_EQ(decoder.decode(kDisconnectFrame, f), DecodeError::ok);
    EXPECT_EQ(f.kind, FrameKind::disconnect);

    if (round % 10 == 0) {
      ASSERT_EQ(decoder.decode(bigger, f), DecodeError::ok);
      EXPECT_EQ(pairs(f), (Pairs{{"x-bigger", bigger_value},
                                 {"x-bigger", "z"},
                                 {"x-mongrel2-upload-start", "/u"}}));
      EXPECT_EQ(f.upload_start, "/u");
    }

    ASSERT_EQ(decoder.decode(kJsonFrame, f), DecodeError::ok);
    EXPECT_EQ(f.headers.size(), 14u);
    EXPECT_EQ(f.kind, FrameKind::http);
  }
}

TEST(Codec, FailedDecodeClearsTheFrame) {
  FrameDecoder decoder;
  Frame f;
  ASSERT_EQ(decoder.decode(kJsonFrame, f), DecodeError::ok);
  ASSERT_EQ(decoder.decode(kJsonFrame.substr(0, 100), f), DecodeError::bad_netstring_length);
  EXPECT_TRUE(f.headers.empty());
  EXPECT_TRUE(f.sender.empty());
  EXPECT_TRUE(f.body.empty());
}

TEST(PeekRouteKey, Good) {
  auto key = peek_route_key(kJsonFrame);
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->sender, kSender);
  EXPECT_EQ(key->conn_id, "2");
  EXPECT_EQ(key->sender.data(), kJsonFrame.data());

  // Only "SENDER SP CONN_ID SP" is looked at.
  key = peek_route_key("s 12345678901234567890 garbage that is no frame");
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->sender, "s");
  EXPECT_EQ(key->conn_id, "12345678901234567890");
  EXPECT_TRUE(peek_route_key("s 1 ").has_value());
  EXPECT_TRUE(peek_route_key(kTnetFrame).has_value());
}

TEST(PeekRouteKey, Bad) {
  EXPECT_FALSE(peek_route_key(""));
  EXPECT_FALSE(peek_route_key("sender"));
  EXPECT_FALSE(peek_route_key("sender "));
  EXPECT_FALSE(peek_route_key("sender 1"));  // no space after the id
  EXPECT_FALSE(peek_route_key(" 1 /p"));
  EXPECT_FALSE(peek_route_key("sender  /p"));
  EXPECT_FALSE(peek_route_key("sender 1a /p"));
  EXPECT_FALSE(peek_route_key("sender 123456789012345678901 /p"));
  EXPECT_FALSE(peek_route_key("send\ner 1 /p"));
  EXPECT_FALSE(peek_route_key(std::string(129, 's') + " 1 /p"));
  EXPECT_TRUE(peek_route_key(std::string(128, 's') + " 1 /p"));
}

TEST(Encode, ReplyMatchesNotesExample) {
  const std::string reply =
      encode_reply(kSender, "5", "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!");
  EXPECT_EQ(reply,
            "14ba3fad-a4e3-42f8-8ab4-4a60a8c33806 1:5, HTTP/1.1 200 OK\r\nContent-Length: "
            "13\r\n\r\nHello, World!");
  EXPECT_GE(reply.capacity(), reply.size());
}

TEST(Encode, ReplyLengthCountsIdBytes) {
  EXPECT_EQ(encode_reply("S", "1234567890", "x"), "S 10:1234567890, x");
}

TEST(Encode, CloseFrameEndsInCommaSpace) {
  const std::string close = encode_close(kSender, "42");
  EXPECT_EQ(close, std::string(kSender) + " 2:42, ");
  EXPECT_TRUE(close.ends_with(", "));
  EXPECT_EQ(encode_reply("S", "1", ""), "S 1:1, ");
}

TEST(Encode, AppendReplyPrefix) {
  std::string out = "before|";
  const std::string_view ids[] = {"1", "22", "333"};
  append_reply_prefix(out, "S", ids);
  EXPECT_EQ(out, "before|S 8:1 22 333, ");

  std::string one;
  append_reply_prefix(one, kSender, std::span<const std::string_view>(ids, 1));
  EXPECT_EQ(one, std::string(kSender) + " 1:1, ");
}

TEST(Encode, AppendReplyPrefixRejectsBadIdCounts) {
  std::string out;
  EXPECT_THROW(append_reply_prefix(out, "S", {}), std::invalid_argument);
  const std::vector<std::string_view> too_many(kMaxIdsPerFrame + 1, "1");
  EXPECT_THROW(append_reply_prefix(out, "S", too_many), std::invalid_argument);
  EXPECT_TRUE(out.empty());
  const std::vector<std::string_view> max(kMaxIdsPerFrame, "1");
  EXPECT_NO_THROW(append_reply_prefix(out, "S", max));
}

TEST(Encode, BroadcastChunksIds) {
  std::vector<std::string> id_storage;
  for (int i = 0; i < 250; ++i) id_storage.push_back(std::to_string(1000 + i * 7));
  const std::vector<std::string_view> ids(id_storage.begin(), id_storage.end());
  const std::string_view body = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

  const auto frames = encode_broadcast(kSender, ids, body);
  ASSERT_EQ(frames.size(), 3u);
  const std::size_t sizes[] = {100, 100, 50};
  std::size_t first = 0;
  for (std::size_t k = 0; k < frames.size(); ++k) {
    std::string list;
    for (std::size_t i = first; i < first + sizes[k]; ++i) {
      if (i != first) list += ' ';
      list += id_storage[i];
    }
    const std::string expected = std::string(kSender) + " " + std::to_string(list.size()) + ":" +
                                 list + ", " + std::string(body);
    EXPECT_EQ(frames[k], expected) << "frame " << k;
    first += sizes[k];
  }
}

TEST(Encode, BroadcastEdgeCounts) {
  EXPECT_TRUE(encode_broadcast("S", {}, "x").empty());
  const std::vector<std::string_view> hundred(100, "9");
  const auto one_frame = encode_broadcast("S", hundred, "x");
  ASSERT_EQ(one_frame.size(), 1u);
  EXPECT_TRUE(one_frame[0].starts_with("S 199:9 9 "));
  const std::vector<std::string_view> hundred_one(101, "9");
  const auto two = encode_broadcast("S", hundred_one, "");
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1], "S 1:9, ");
}

// Mongrel2's own shape takes the fast path; everything else takes the full
// reader. Wherever simdjson's DOM reads the JSON, the decoder must read the
// same headers; what simdjson rejects because of raw bytes inside strings
// (control bytes, bytes that are not UTF-8), Mongrel2 still sends, and the
// decoder takes as bytes.
TEST(Codec, JsonHeaderReadersAgreeWithSimdjson) {
  std::string many_quotes = "{";
  for (int i = 0; i < 300; ++i)
    many_quotes += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":\"v\"";
  many_quotes += "}";
  const std::string long_value =
      "{\"a\":\"" + std::string(100, 'x') + "\",\"b\":\"" + std::string(15, 'y') + "\",\"c\":\"\"}";
  enum Outcome { fast, full, refused };
  const struct {
    std::string json;
    Outcome outcome;
  } cases[] = {
      {"{}", fast},
      {R"({"PATH":"/x","METHOD":"GET"})", fast},
      {R"({"a":["1","2"],"b":[],"c":"3"})", fast},
      {R"({"a":"x","a":"y"})", fast},
      {R"({"":""})", fast},
      {"{\"a\":\"\xc3\xa9t\xc3\xa9\"}", fast},  // UTF-8
      {"{\"a\":\"\x7f\"}", fast},               // DEL is not a control character in JSON
      {long_value, fast},
      {std::string(kJsonFrame.substr(kJsonFrame.find('{'), 314)), fast},
      {many_quotes, full},  // more quotes than the fast path tracks
      {R"({"a":"x"} )", full},
      {R"({ "a":"x"})", full},
      {"{\"a\":\n\"x\"}", full},
      {"{\r\n\t\"a\" : [ \"x\" , \"y\" ] }", full},
      {R"({"a" :"x"})", full},
      {R"({"a":"x\"y"})", full},
      {R"({"a":"\u00e9","b":"\\"})", full},
      {R"({"a":"\ud83d\ude00 \/ \b\f\n\r\t"})", full},
      {R"({"\u0041":"\u0000"})", full},
      {R"({"a":1})", refused},
      {R"({"a":{"b":"c"}})", refused},
      {R"({"a":["x",1]})", refused},
      {R"({"a":"x"}x)", refused},
      {R"({"a":"x"}})", refused},
      {R"({"a":"x",})", refused},
      {R"({"a":"x" "b":"y"})", refused},
      {R"({"a":["x",]})", refused},
      {R"({"a":["x")", refused},
      {R"({"a":"x)", refused},
      {R"({"a":"x\)", refused},
      {R"({"a":"\q"})", refused},
      {R"({"a":"\u00g0"})", refused},
      {R"({"a":"\u00e"})", refused},
      {R"({"a")", refused},
      {"{\"a\":\"x\"\x01}", refused},  // a control byte between tokens
      {R"(["a"])", refused},
      {R"("a")", refused},
      {"", refused},
      {"{", refused},
      {"}", refused},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json);
    std::vector<Header> fast_headers;
    const bool took = detail::scan_flat_json_headers(c.json, fast_headers);
    EXPECT_EQ(took, c.outcome == fast);
    const auto reference = test_support::reference_json_headers(c.json);
    FrameDecoder decoder;
    Frame frame;
    const auto bytes = make_frame(c.json);
    const auto e = decoder.decode(bytes, frame);
    EXPECT_EQ(e == DecodeError::ok, c.outcome != refused);
    if (e != DecodeError::ok) {
      EXPECT_EQ(e, DecodeError::bad_headers);
    }
    if (reference) {
      ASSERT_EQ(e, DecodeError::ok);
      EXPECT_EQ(pairs(frame), *reference);
    }
  }
}

// Header values are bytes: Mongrel2 escapes only quotes and backslashes and
// passes control bytes and bytes that are not UTF-8 through raw (captured
// from Mongrel2 1.12.2 for User-Agent: caf\xe9 "q" \ \x01).
TEST(Codec, RawHeaderBytesAsMongrel2SendsThem) {
  const std::string ua_json = "caf\xe9 \\\"q\\\" \\\\ \x01";
  const std::string ua = "caf\xe9 \"q\" \\ \x01";
  const std::string latin1 = "\xe9t\xe9 \xff\x80 \x7f\x1f";
  const std::string headers = R"({"PATH":"/x","x-forwarded-for":"127.0.0.1","user-agent":")" +
                              ua_json + R"(","referer":")" + latin1 + R"(","cookie":"a=)" + latin1 +
                              R"(","x-custom":[")" + latin1 +
                              R"(","tab	here"],"host":"x","METHOD":"GET"})";
  FrameDecoder decoder;
  Frame frame;
  const auto bytes = make_frame(headers);
  ASSERT_EQ(decoder.decode(bytes, frame), DecodeError::ok);
  EXPECT_EQ(pairs(frame), (Pairs{{"PATH", "/x"},
                                 {"x-forwarded-for", "127.0.0.1"},
                                 {"user-agent", ua},
                                 {"referer", latin1},
                                 {"cookie", "a=" + latin1},
                                 {"x-custom", latin1},
                                 {"x-custom", "tab\there"},
                                 {"host", "x"},
                                 {"METHOD", "GET"}}));
  EXPECT_EQ(frame_action(bytes, DecodeError::ok, frame), FrameAction::serve);

  // Without the escaped user-agent the whole object takes the fast path,
  // and the values are views into the frame's own bytes.
  const std::string plain = R"({"PATH":"/x","referer":")" + latin1 + R"(","METHOD":"GET"})";
  std::vector<Header> fast;
  ASSERT_TRUE(detail::scan_flat_json_headers(plain, fast));
  ASSERT_EQ(fast.size(), 3u);
  EXPECT_EQ(fast[1].value, latin1);
  EXPECT_GE(fast[1].value.data(), plain.data());
  EXPECT_LT(fast[1].value.data(), plain.data() + plain.size());
}

// A frame whose sender and conn id can be read is never dropped in silence.
TEST(Codec, FrameActions) {
  FrameDecoder decoder;
  auto action = [&](std::string_view bytes) {
    Frame frame;
    const auto e = decoder.decode(bytes, frame);
    return frame_action(bytes, e, frame);
  };
  EXPECT_EQ(action(kJsonFrame), FrameAction::serve);
  EXPECT_EQ(action(kTnetFrame), FrameAction::serve);
  EXPECT_EQ(action(kDisconnectFrame), FrameAction::disconnect);
  EXPECT_EQ(action(make_frame(R"({"METHOD":"JSON"})", R"({"type":"msg"})")), FrameAction::close);
  EXPECT_EQ(action(make_frame(R"({"METHOD":"XML"})", "<x/>")), FrameAction::close);
  // Decodable, but no METHOD or no PATH.
  EXPECT_EQ(action(make_frame(R"({"PATH":"/x"})")), FrameAction::reject);
  EXPECT_EQ(action(make_frame(R"({"METHOD":"GET"})")), FrameAction::reject);
  EXPECT_EQ(action(make_frame(R"({"PATH":"/x","METHOD":"GET"})")), FrameAction::serve);
  // Broken after the conn id: still answered.
  EXPECT_EQ(action(make_frame(R"({"a":1})")), FrameAction::reject);
  EXPECT_EQ(action(std::string(kSender) + " 7 /p 3:abc"), FrameAction::reject);
  EXPECT_EQ(action(std::string(kSender) + " 7 "), FrameAction::reject);
  EXPECT_EQ(action(kJsonFrame.substr(0, kJsonFrame.size() - 1)), FrameAction::reject);
  // Nobody to answer.
  EXPECT_EQ(action(""), FrameAction::drop);
  EXPECT_EQ(action("sender 1"), FrameAction::drop);
  EXPECT_EQ(action(std::string(kSender) + " x1 /p 2:{},0:,"), FrameAction::drop);
}

}  // namespace
}  // namespace brubeck

// Brubeck's own test vectors, ported: the raw Mongrel2 request messages of
// j2labs/brubeck tests/fixtures/*.txt and the exact HTTP responses that its
// tests/test_request_handling.py expects (tests/fixtures/request_handler_fixtures.py),
// fed through our codec, RouteTable and dispatch with C++ handlers equivalent
// to tests/handlers/{object,method}_handlers.py.
//
// Responses are compared as: exact status line, exact body, and headers as a
// multiset (order-insensitive: Brubeck rendered a Python dict, whose order is
// not meaningful). Headers we add by documented choice are listed per test,
// with their exact value, next to the comparison.
//
// Documented differences that show up in these vectors:
//  - WebMessageHandler adds "Content-Type: text/html; charset=utf-8" to a
//    non-empty body without one (Brubeck sent no Content-Type at all).
//  - set_cookie() defaults to Path=/ (Brubeck's SimpleCookie wrote no
//    attributes); the ports pass an empty path to get Brubeck's exact line.
//  - Brubeck's fixture files end in a newline that Brubeck's netstring parser
//    ignored; our decoder is strict and refuses trailing bytes.
// Behaviours the fixtures exercise but Brubeck's tests never asserted, where
// we differ on purpose (errors, 405, 404, OPTIONS, HEAD), are at the end.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "brubeck/handlers/cookies.hpp"
#include "brubeck/handlers/dispatch.hpp"
#include "brubeck/handlers/handler.hpp"
#include "brubeck/handlers/request.hpp"
#include "brubeck/handlers/response.hpp"
#include "brubeck/handlers/routes.hpp"
#include "brubeck/handlers/settings.hpp"
#include "brubeck/pipeline/codec.hpp"

namespace brubeck {
namespace {

// ---------------------------------------------------------------------------
// Test data, verbatim from Brubeck's tests/fixtures (the files' trailing
// newline included, as `file(...).read()` returned it).

// tests/fixtures/http_request_brubeck.txt (loaded by Brubeck's fixtures but
// used by none of its tests; used here for routing).
constexpr std::string_view kHttpRequestBrubeckFile =
    R"m2(34f9ceee-cd52-4b7f-b197-88bf2f0ec378 3 /brubeck 508:{"PATH":"/brubeck","x-forwarded-for":"127.0.0.1","cache-control":"max-age=0","accept-language":"en-US,en;q=0.8","accept-encoding":"gzip,deflate,sdch","connection":"keep-alive","accept-charset":"ISO-8859-1,utf-8;q=0.7,*;q=0.3","accept":"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8","user-agent":"Mozilla/5.0 (X11; Linux i686) AppleWebKit/535.2 (KHTML, like Gecko) Chrome/15.0.874.106 Safari/535.2","host":"127.0.0.1:6767","METHOD":"GET","VERSION":"HTTP/1.1","URI":"/brubeck","PATTERN":"/"},0:,)m2"
    "\n";

// tests/fixtures/http_request_root.txt
constexpr std::string_view kHttpRequestRootFile =
    R"m2(34f9ceee-cd52-4b7f-b197-88bf2f0ec378 5 / 466:{"PATH":"/","x-forwarded-for":"127.0.0.1","accept-language":"en-US,en;q=0.8","accept-encoding":"gzip,deflate,sdch","connection":"keep-alive","accept-charset":"ISO-8859-1,utf-8;q=0.7,*;q=0.3","accept":"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8","user-agent":"Mozilla/5.0 (X11; Linux i686) AppleWebKit/535.2 (KHTML, like Gecko) Chrome/15.0.874.106 Safari/535.2","host":"127.0.0.1:6767","METHOD":"GET","VERSION":"HTTP/1.1","URI":"/","PATTERN":"/"},0:,)m2"
    "\n";

// tests/fixtures/http_request_root_with_cookie.txt (its sender UUID really is
// cut short in Brubeck's file: "ee-cd52-...").
constexpr std::string_view kHttpRequestRootWithCookieFile =
    R"m2(ee-cd52-4b7f-b197-88bf2f0ec378 5 / 487:{"PATH":"/","x-forwarded-for":"127.0.0.1","accept-language":"en-US,en;q=0.8","accept-encoding":"gzip,deflate,sdch","connection":"keep-alive","accept-charset":"ISO-8859-1,utf-8;q=0.7,*;q=0.3","accept":"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8","user-agent":"Mozilla/5.0 (X11; Linux i686) AppleWebKit/535.2 (KHTML, like Gecko) Chrome/15.0.874.106 Safari/535.2","host":"127.0.0.1:6767","cookie":"key=value","METHOD":"GET","VERSION":"HTTP/1.1","URI":"/","PATTERN":"/"},0:,)m2"
    "\n";

// tests/fixtures/test_body_{method,object}_handler.txt, .rstrip('\n') as the
// fixtures module does.
constexpr std::string_view kTestBodyMethodHandler = "Take five dude method handler";
constexpr std::string_view kTestBodyObjectHandler = "Take five dude object handler";

std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) out.append(p);
  return out;
}

// The expected responses of request_handler_fixtures.py, built the same way.
std::string http_response_object_root() {
  return cat({"HTTP/1.1 200 OK\r\nContent-Length: ", std::to_string(kTestBodyObjectHandler.size()),
              "\r\n\r\n", kTestBodyObjectHandler});
}
std::string http_response_method_root() {
  return cat({"HTTP/1.1 200 OK\r\nContent-Length: ", std::to_string(kTestBodyMethodHandler.size()),
              "\r\n\r\n", kTestBodyMethodHandler});
}
constexpr std::string_view kHttpResponseJsonObjectRoot =
    "HTTP/1.1 200 OK\r\nContent-Length: 90\r\nContent-Type: application/json\r\n\r\n"
    R"({"status_code":200,"status_msg":"OK","message":"Take five dude","timestamp":1320456118809})";
std::string http_response_object_root_with_cookie() {
  return cat({"HTTP/1.1 200 OK\r\nSet-Cookie: key=value\r\nContent-Length: ",
              std::to_string(kTestBodyObjectHandler.size()), "\r\n\r\n", kTestBodyObjectHandler});
}

// What WebMessageHandler adds to a body without a Content-Type.
const std::pair<std::string, std::string> kHtmlType{"Content-Type", "text/html; charset=utf-8"};

// ---------------------------------------------------------------------------
// Frames and requests.

// A fixture file's text without the newline the text file ends in: the bytes
// Mongrel2 put on the socket.
std::string_view frame_of(std::string_view file) {
  if (!file.empty() && file.back() == '\n') file.remove_suffix(1);
  return file;
}

DecodeError decode_error_of(std::string_view bytes) {
  FrameDecoder decoder;
  Frame frame;
  return decoder.decode(bytes, frame);
}

// A Request decoded from raw frame bytes, keeping a copy of them alive.
Request request_from_wire(std::string_view frame_bytes) {
  auto bytes = std::make_shared<const std::string>(frame_bytes);
  FrameDecoder decoder;
  Frame frame;
  auto err = decoder.decode(*bytes, frame);
  if (err != DecodeError::ok) {
    std::string msg = "fixture frame does not decode: ";
    msg.append(to_string(err));
    throw std::runtime_error(msg);
  }
  return Request(std::move(frame), std::move(bytes));
}

// The same frame with `from` replaced by `to` inside its headers netstring,
// whose length is recomputed: for variants of a fixture (another METHOD,
// another cookie) that stay byte-for-byte Brubeck's message otherwise.
std::string reframe(std::string_view frame, std::string_view from, std::string_view to) {
  std::size_t pos = 0;
  for (int spaces = 0; spaces < 3; ++spaces) {
    pos = frame.find(' ', pos);
    if (pos == std::string_view::npos) throw std::invalid_argument("not a Mongrel2 frame");
    ++pos;
  }
  auto colon = frame.find(':', pos);
  if (colon == std::string_view::npos) throw std::invalid_argument("no headers netstring");
  std::size_t length = std::stoul(std::string(frame.substr(pos, colon - pos)));
  std::string headers(frame.substr(colon + 1, length));
  auto at = headers.find(from);
  if (at == std::string::npos) throw std::invalid_argument("text to replace not in the headers");
  headers.replace(at, from.size(), to);
  return cat({frame.substr(0, pos), std::to_string(headers.size()), ":", headers,
              frame.substr(colon + 1 + length)});
}

// ---------------------------------------------------------------------------
// Responses on the wire.

using HeaderSet = std::multiset<std::pair<std::string, std::string>>;

struct Wire {
  std::string status_line;
  HeaderSet headers;
  std::string body;
};

// Splits an HTTP/1.1 response; throws if it is not one.
Wire parse_wire(std::string_view bytes) {
  auto head_end = bytes.find("\r\n\r\n");
  if (head_end == std::string_view::npos) throw std::invalid_argument("no end of headers");
  Wire w;
  auto head = bytes.substr(0, head_end + 2);
  w.body = std::string(bytes.substr(head_end + 4));
  auto line_end = head.find("\r\n");
  w.status_line = std::string(head.substr(0, line_end));
  head.remove_prefix(line_end + 2);
  while (!head.empty()) {
    line_end = head.find("\r\n");
    auto line = head.substr(0, line_end);
    auto sep = line.find(": ");
    if (sep == std::string_view::npos) throw std::invalid_argument("header line without ': '");
    w.headers.emplace(std::string(line.substr(0, sep)), std::string(line.substr(sep + 2)));
    head.remove_prefix(line_end + 2);
  }
  return w;
}

std::string show(const HeaderSet& headers) {
  std::string out;
  for (const auto& [k, v] : headers) out.append("\n  ").append(k).append(": ").append(v);
  return out.empty() ? std::string("\n  (none)") : out;
}

// Our reply against Brubeck's: same status line and body, and our headers are
// exactly Brubeck's plus `ours_only` (headers we add by documented choice).
::testing::AssertionResult matches_brubeck(
    std::string_view ours, std::string_view brubeck,
    std::initializer_list<std::pair<std::string, std::string>> ours_only = {}) {
  Wire got = parse_wire(ours);
  Wire want = parse_wire(brubeck);
  for (const auto& h : ours_only) {
    if (want.headers.count(h) != 0)
      return ::testing::AssertionFailure()
             << "test error: '" << h.first << "' is in Brubeck's reply already";
    want.headers.insert(h);
  }
  if (got.status_line != want.status_line)
    return ::testing::AssertionFailure()
           << "status line '" << got.status_line << "', want '" << want.status_line << "'";
  if (got.body != want.body)
    return ::testing::AssertionFailure() << "body '" << got.body << "', want '" << want.body << "'";
  if (got.headers != want.headers)
    return ::testing::AssertionFailure()
           << "headers:" << show(got.headers) << "\nwant:" << show(want.headers);
  return ::testing::AssertionSuccess();
}

const HandlerSettings& default_settings() {
  static const HandlerSettings settings;
  return settings;
}

// Runs `request` through `routes` and returns the reply's wire bytes.
std::string serve(const RouteTable& routes, const Request& request,
                  const HandlerSettings& settings = default_settings()) {
  auto d = dispatch(routes, request, settings);
  std::string out;
  d.response.serialize(out, d.include_body);
  return out;
}

std::string serve_fixture(const RouteTable& routes, std::string_view file,
                          const HandlerSettings& settings = default_settings()) {
  return serve(routes, request_from_wire(frame_of(file)), settings);
}

// ---------------------------------------------------------------------------
// tests/handlers/object_handlers.py and method_handlers.py, in C++.

// CookieOptions that write no attribute, like Python's SimpleCookie with
// none set (ours default to Path=/).
CookieOptions no_cookie_attributes() {
  CookieOptions o;
  o.path.clear();
  return o;
}

class SimpleWebHandlerObject : public WebMessageHandler {
 public:
  void get() override { set_body(std::string(kTestBodyObjectHandler)); }
};

// Echoes the "key" cookie. Brubeck's get_cookie gave None when absent and
// set_cookie then raised TypeError; value() throwing is the same failure.
class CookieWebHandlerObject : public WebMessageHandler {
 public:
  void get() override {
    set_cookie("key", get_cookie("key").value(), no_cookie_attributes());
    set_body(std::string(kTestBodyObjectHandler));
  }
};

class SimpleJSONHandlerObject : public JSONMessageHandler {
 public:
  void get() override {
    add_to_payload("message", "Take five dude");
    set_status(200);
    // Brubeck's test sets the time only so the reply matches the vector.
    add_to_payload("timestamp", std::int64_t{1320456118809});
  }
};

class CookieAddWebHandlerObject : public WebMessageHandler {
 public:
  void get() override {
    set_cookie("key", "value", no_cookie_attributes());
    set_body(std::string(kTestBodyObjectHandler));
  }
};

class PrepareHookWebHandlerObject : public WebMessageHandler {
 public:
  void get() override {}
  void prepare() override { set_body(std::string(kTestBodyObjectHandler)); }
};

class InitializeHookWebHandlerObject : public WebMessageHandler {
 public:
  void get() override {}
  void initialize() override {
    clear_headers();  // Brubeck's `self.headers = dict()`
    set_body(std::string(kTestBodyObjectHandler));
  }
};

// simple_handler_method: Brubeck's add_route_rule put no method check on a
// function, so the port answers every method.
RouteSpec simple_handler_method(std::string pattern) {
  return function_route(
      std::move(pattern), {Method::get, Method::post, Method::put, Method::patch, Method::delete_},
      [](WebMessageHandler& h) { h.set_body(std::string(kTestBodyMethodHandler)); });
}

template <class H>
RouteTable one_route(std::string pattern = "^/$") {
  std::vector<RouteSpec> specs;
  specs.push_back(class_route<H>(std::move(pattern)));
  return RouteTable(std::move(specs));
}

// The comparison itself must catch each kind of difference.
TEST(BrubeckVectorHelpers, ComparisonCatchesEveryDifference) {
  const std::string base = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\nbody";
  EXPECT_TRUE(matches_brubeck(base, base));
  EXPECT_TRUE(matches_brubeck("HTTP/1.1 200 OK\r\nB: 2\r\nA: 1\r\n\r\nbody", base));
  EXPECT_TRUE(
      matches_brubeck("HTTP/1.1 200 OK\r\nB: 2\r\nC: 3\r\nA: 1\r\n\r\nbody", base, {{"C", "3"}}));
  EXPECT_FALSE(matches_brubeck("HTTP/1.1 201 OK\r\nA: 1\r\nB: 2\r\n\r\nbody", base));
  EXPECT_FALSE(matches_brubeck("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\nbodY", base));
  EXPECT_FALSE(matches_brubeck("HTTP/1.1 200 OK\r\nA: 1\r\n\r\nbody", base));
  EXPECT_FALSE(matches_brubeck("HTTP/1.1 200 OK\r\nA: 1\r\nB: 3\r\n\r\nbody", base));
  EXPECT_FALSE(matches_brubeck("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nB: 2\r\n\r\nbody", base));
  EXPECT_FALSE(matches_brubeck(base, base, {{"C", "3"}}));  // an addition we do not send
  EXPECT_FALSE(matches_brubeck(base, base, {{"A", "1"}}));  // an "addition" Brubeck had
  EXPECT_THROW(parse_wire("HTTP/1.1 200 OK\r\nno end of headers"), std::invalid_argument);
  // reframe keeps the frame decodable and changes only what it is told to.
  auto frame = reframe(frame_of(kHttpRequestRootFile), R"("METHOD":"GET")", R"("METHOD":"DELETE")");
  auto r = request_from_wire(frame);
  EXPECT_EQ(r.method(), "DELETE");
  EXPECT_EQ(r.headers().size(), request_from_wire(frame_of(kHttpRequestRootFile)).headers().size());
}

// ---------------------------------------------------------------------------
// The fixture requests, as Brubeck's Request.parse_msg read them.

TEST(BrubeckFixtures, FilesEndInANewlineThatOurStrictDecoderRefuses) {
  // Brubeck's parse_netstring dropped whatever followed the body netstring;
  // our decoder refuses trailing bytes (a Mongrel2 frame has none), so the
  // tests feed the frame without the text file's final newline.
  for (auto file :
       {kHttpRequestBrubeckFile, kHttpRequestRootFile, kHttpRequestRootWithCookieFile}) {
    EXPECT_EQ(decode_error_of(file), DecodeError::trailing_bytes);
    EXPECT_EQ(decode_error_of(frame_of(file)), DecodeError::ok);
  }
}

TEST(BrubeckFixtures, HttpRequestRoot) {
  auto r = request_from_wire(frame_of(kHttpRequestRootFile));
  EXPECT_EQ(r.kind(), FrameKind::http);
  EXPECT_FALSE(r.is_disconnect());
  EXPECT_EQ(r.sender(), "34f9ceee-cd52-4b7f-b197-88bf2f0ec378");
  EXPECT_EQ(r.conn_id(), "5");
  EXPECT_EQ(r.path(), "/");
  EXPECT_EQ(r.method(), "GET");
  EXPECT_EQ(r.version(), "HTTP/1.1");
  EXPECT_EQ(r.uri(), "/");
  EXPECT_EQ(r.query_string(), "");
  EXPECT_TRUE(r.query_arguments().empty());
  EXPECT_EQ(r.body(), "");
  EXPECT_EQ(r.remote_addr(), "127.0.0.1");  // Brubeck: x-forwarded-for
  EXPECT_EQ(r.full_url(), "http://127.0.0.1:6767/");
  EXPECT_FALSE(r.should_close());  // HTTP/1.1, keep-alive
  EXPECT_EQ(r.header("Accept-Language").value_or(""), "en-US,en;q=0.8");
  EXPECT_EQ(r.header_or("PATTERN", ""), "/");
  EXPECT_FALSE(r.header("cookie").has_value());
  EXPECT_EQ(r.headers().size(), 13u);
}

TEST(BrubeckFixtures, HttpRequestBrubeck) {
  auto r = request_from_wire(frame_of(kHttpRequestBrubeckFile));
  EXPECT_EQ(r.sender(), "34f9ceee-cd52-4b7f-b197-88bf2f0ec378");
  EXPECT_EQ(r.conn_id(), "3");
  EXPECT_EQ(r.path(), "/brubeck");
  EXPECT_EQ(r.method(), "GET");
  EXPECT_EQ(r.uri(), "/brubeck");
  EXPECT_EQ(r.header_or("cache-control", ""), "max-age=0");
  EXPECT_EQ(r.full_url(), "http://127.0.0.1:6767/brubeck");
  EXPECT_FALSE(r.should_close());
  EXPECT_EQ(r.headers().size(), 14u);
}

TEST(BrubeckFixtures, HttpRequestRootWithCookie) {
  auto r = request_from_wire(frame_of(kHttpRequestRootWithCookieFile));
  EXPECT_EQ(r.sender(), "ee-cd52-4b7f-b197-88bf2f0ec378");
  EXPECT_EQ(r.conn_id(), "5");
  EXPECT_EQ(r.path(), "/");
  EXPECT_EQ(r.header_or("cookie", ""), "key=value");
  auto cookies = parse_cookie_header(r.header_or("cookie", ""));
  ASSERT_EQ(cookies.size(), 1u);
  EXPECT_EQ(cookies[0], (std::pair<std::string, std::string>{"key", "value"}));
}

// ---------------------------------------------------------------------------
// tests/test_request_handling.py, test by test.

TEST(BrubeckRequestHandling, AddRouteRuleMethod) {
  // "Make sure we have no routes", then exactly one.
  EXPECT_EQ(RouteTable(std::vector<RouteSpec>{}).size(), 0u);
  EXPECT_FALSE(RouteTable(std::vector<RouteSpec>{}).match("/").has_value());
  std::vector<RouteSpec> specs;
  specs.push_back(simple_handler_method("^/$"));
  EXPECT_EQ(RouteTable(std::move(specs)).size(), 1u);
}

TEST(BrubeckRequestHandling, InitRoutesWithMethods) {
  std::vector<RouteSpec> specs;
  specs.push_back(simple_handler_method("^/"));
  specs.push_back(simple_handler_method("^/brubeck"));
  EXPECT_EQ(RouteTable(std::move(specs)).size(), 2u);
}

TEST(BrubeckRequestHandling, InitRoutesWithObjects) {
  std::vector<RouteSpec> specs;
  specs.push_back(class_route<SimpleWebHandlerObject>("^/"));
  specs.push_back(class_route<SimpleWebHandlerObject>("^/brubeck"));
  EXPECT_EQ(RouteTable(std::move(specs)).size(), 2u);
}

TEST(BrubeckRequestHandling, InitRoutesWithObjectsAndMethods) {
  std::vector<RouteSpec> specs;
  specs.push_back(class_route<SimpleWebHandlerObject>("^/"));
  specs.push_back(simple_handler_method("^/brubeck"));
  EXPECT_EQ(RouteTable(std::move(specs)).size(), 2u);
}

TEST(BrubeckRequestHandling, AddRouteRuleObject) {
  EXPECT_EQ(one_route<SimpleWebHandlerObject>().size(), 1u);
}

TEST(BrubeckRequestHandling, HandleRequestWithObject) {
  // MockMessage(path='/') routes to a handler of the route's class.
  auto routes = one_route<SimpleWebHandlerObject>();
  auto match = routes.match("/");
  ASSERT_TRUE(match.has_value());
  auto handler = match->route->factory();
  EXPECT_NE(dynamic_cast<SimpleWebHandlerObject*>(handler.get()), nullptr);
  EXPECT_FALSE(routes.match("/x").has_value());  // '^/$' is anchored at the end
}

TEST(BrubeckRequestHandling, HandleRequestWithMethod) {
  std::vector<RouteSpec> specs;
  specs.push_back(simple_handler_method("^/$"));
  RouteTable routes(std::move(specs));
  auto match = routes.match("/");
  ASSERT_TRUE(match.has_value());
  EXPECT_NE(match->route->factory(), nullptr);
  EXPECT_FALSE(routes.match("/x").has_value());
}

TEST(BrubeckRequestHandling, CookieHandling) {
  // cookie_encode/cookie_decode/cookie_is_encoded map onto CookieSigner.
  // Brubeck's key 'my_key' (6 bytes) is refused on purpose: a secret that
  // short can be brute-forced from one signed cookie. A longer secret made of
  // it stands in. Our signatures are also bound to the cookie name.
  const std::string cookie_key = "my_key";
  const std::string cookie_value = "my_secret";
  EXPECT_THROW(CookieSigner(std::vector<std::string>{cookie_key}), std::invalid_argument);
  CookieSigner signer(std::vector<std::string>{cat({cookie_key, cookie_key, cookie_key})});

  auto encoded = signer.sign("cookie", cookie_value);
  // Not the plain value (Brubeck base64'd a pickle of it, we base64url it).
  EXPECT_EQ(encoded.find(cookie_value), std::string::npos);
  EXPECT_TRUE(is_cookie_value(encoded));
  // cookie_is_encoded: a signed value verifies, the plain one does not.
  EXPECT_FALSE(signer.verify("cookie", cookie_value, std::chrono::hours(1)).has_value());
  // Decoding gives back the original value.
  EXPECT_EQ(signer.verify("cookie", encoded, std::chrono::hours(1)).value_or("<none>"),
            cookie_value);
  // And only with the right key.
  CookieSigner other(std::vector<std::string>{"another key, 16+ bytes"});
  EXPECT_FALSE(other.verify("cookie", encoded, std::chrono::hours(1)).has_value());
}

TEST(BrubeckRequestHandling, WebRequestHandlingWithObject) {
  auto routes = one_route<SimpleWebHandlerObject>();
  EXPECT_TRUE(matches_brubeck(serve_fixture(routes, kHttpRequestRootFile),
                              http_response_object_root(), {kHtmlType}));
}

TEST(BrubeckRequestHandling, WebRequestHandlingWithMethod) {
  std::vector<RouteSpec> specs;
  specs.push_back(simple_handler_method("^/$"));
  RouteTable routes(std::move(specs));
  EXPECT_TRUE(matches_brubeck(serve_fixture(routes, kHttpRequestRootFile),
                              http_response_method_root(), {kHtmlType}));
}

TEST(BrubeckRequestHandling, JsonRequestHandlingWithObject) {
  // No header of ours beyond Brubeck's here: the JSON handler sets its own
  // Content-Type. (Only the header order differs: Content-Length comes last.)
  auto routes = one_route<SimpleJSONHandlerObject>();
  EXPECT_TRUE(
      matches_brubeck(serve_fixture(routes, kHttpRequestRootFile), kHttpResponseJsonObjectRoot));
}

// Also Brubeck's test_request_with_cookie_response_with_cookie_handling_with_object,
// which is the same test, line for line.
TEST(BrubeckRequestHandling, RequestWithCookieHandlingWithObject) {
  auto routes = one_route<CookieWebHandlerObject>();
  EXPECT_TRUE(matches_brubeck(serve_fixture(routes, kHttpRequestRootWithCookieFile),
                              http_response_object_root_with_cookie(), {kHtmlType}));
}

TEST(BrubeckRequestHandling, RequestWithCookieEchoesAnotherValue) {
  // The same vector with the fixture's cookie changed: the echo is computed.
  auto routes = one_route<CookieWebHandlerObject>();
  auto frame = reframe(frame_of(kHttpRequestRootWithCookieFile), R"("cookie":"key=value")",
                       R"("cookie":"other=1; key=take5")");
  auto want = http_response_object_root_with_cookie();
  want.replace(want.find("key=value"), 9, "key=take5");
  EXPECT_TRUE(matches_brubeck(serve(routes, request_from_wire(frame)), want, {kHtmlType}));
}

TEST(BrubeckRequestHandling, RequestWithoutCookieResponseWithCookieHandlingWithObject) {
  auto routes = one_route<CookieAddWebHandlerObject>();
  EXPECT_TRUE(matches_brubeck(serve_fixture(routes, kHttpRequestRootFile),
                              http_response_object_root_with_cookie(), {kHtmlType}));
}

TEST(BrubeckRequestHandling, BuildHttpResponse) {
  // http_response(body, 200, 'OK', {}): no Content-Type is added at this
  // level, so the wire form is Brubeck's, byte for byte.
  Response r;
  r.status = 200;
  r.body = std::string(kTestBodyObjectHandler);
  std::string wire;
  r.serialize(wire);
  EXPECT_EQ(wire, http_response_object_root());
}

TEST(BrubeckRequestHandling, HandlerInitializeHook) {
  auto routes = one_route<InitializeHookWebHandlerObject>();
  EXPECT_TRUE(matches_brubeck(serve_fixture(routes, kHttpRequestRootFile),
                              http_response_object_root(), {kHtmlType}));
}

TEST(BrubeckRequestHandling, HandlerPrepareHook) {
  auto routes = one_route<PrepareHookWebHandlerObject>();
  EXPECT_TRUE(matches_brubeck(serve_fixture(routes, kHttpRequestRootFile),
                              http_response_object_root(), {kHtmlType}));
}

// ---------------------------------------------------------------------------
// Routing with the route lists of test_init_routes_* and the fixture nobody
// in Brubeck used: patterns match at the start of the path (re.match), first
// match wins, so "^/" shadows "^/brubeck".

TEST(BrubeckRouting, CatchAllPrefixRouteShadowsALaterOne) {
  std::vector<RouteSpec> specs;
  specs.push_back(class_route<SimpleWebHandlerObject>("^/"));
  specs.push_back(simple_handler_method("^/brubeck"));
  RouteTable routes(std::move(specs));
  EXPECT_TRUE(matches_brubeck(serve_fixture(routes, kHttpRequestBrubeckFile),
                              http_response_object_root(), {kHtmlType}));
  EXPECT_TRUE(matches_brubeck(serve_fixture(routes, kHttpRequestRootFile),
                              http_response_object_root(), {kHtmlType}));
}

TEST(BrubeckRouting, SpecificRouteFirstIsReached) {
  std::vector<RouteSpec> specs;
  specs.push_back(simple_handler_method("^/brubeck"));
  specs.push_back(class_route<SimpleWebHandlerObject>("^/"));
  RouteTable routes(std::move(specs));
  EXPECT_TRUE(matches_brubeck(serve_fixture(routes, kHttpRequestBrubeckFile),
                              http_response_method_root(), {kHtmlType}));
  EXPECT_TRUE(matches_brubeck(serve_fixture(routes, kHttpRequestRootFile),
                              http_response_object_root(), {kHtmlType}));
}

// ---------------------------------------------------------------------------
// Where we differ from Brubeck on purpose, shown on the fixture requests and
// handlers. Brubeck's replies here are read off its request_handling.py (its
// tests never asserted them) and given in the comments; ours are asserted.

TEST(BrubeckDifferences, SetCookieDefaultsToPathSlash) {
  // Brubeck: "Set-Cookie: key=value". Our set_cookie() defaults to Path=/, so
  // a cookie set under /a/b is sent back for the whole site, which is what
  // handlers almost always mean.
  class DefaultCookie : public WebMessageHandler {
   public:
    void get() override {
      set_cookie("key", get_cookie("key").value());
      set_body(std::string(kTestBodyObjectHandler));
    }
  };
  auto routes = one_route<DefaultCookie>();
  auto want = http_response_object_root_with_cookie();
  want.replace(want.find("key=value"), 9, "key=value; Path=/");
  EXPECT_TRUE(
      matches_brubeck(serve_fixture(routes, kHttpRequestRootWithCookieFile), want, {kHtmlType}));
}

TEST(BrubeckDifferences, ExceptionInAHandlerIs500) {
  // CookieWebHandlerObject on a request without the cookie: Brubeck's
  // set_cookie raised TypeError, __call__ logged it and error() returned
  // None, so Mongrel2 got no reply and the client hung until it timed out.
  // We answer 500 with a short text body and carry on.
  auto routes = one_route<CookieWebHandlerObject>();
  auto got = parse_wire(serve_fixture(routes, kHttpRequestRootFile));
  EXPECT_EQ(got.status_line, "HTTP/1.1 500 Internal Server Error");
  EXPECT_EQ(got.body, "500 Internal Server Error\n");
  EXPECT_EQ(got.headers, (HeaderSet{{"Content-Type", "text/plain; charset=utf-8"},
                                    {"Content-Length", std::to_string(got.body.size())}}));
}

TEST(BrubeckDifferences, UnsupportedMethodIs405WithFullAllow) {
  // POST to SimpleWebHandlerObject. Brubeck: "HTTP/1.1 405 Method not
  // allowed", "Allow: GET, OPTIONS", "Content-Length: 0", empty body. Ours:
  // the standard reason phrase, HEAD listed (we answer it, below), and a
  // short text body like every error reply.
  auto routes = one_route<SimpleWebHandlerObject>();
  auto frame = reframe(frame_of(kHttpRequestRootFile), R"("METHOD":"GET")", R"("METHOD":"POST")");
  auto got = parse_wire(serve(routes, request_from_wire(frame)));
  EXPECT_EQ(got.status_line, "HTTP/1.1 405 Method Not Allowed");
  EXPECT_EQ(got.body, "405 Method Not Allowed\n");
  EXPECT_EQ(got.headers, (HeaderSet{{"Allow", "GET, HEAD, OPTIONS"},
                                    {"Content-Type", "text/plain; charset=utf-8"},
                                    {"Content-Length", std::to_string(got.body.size())}}));
}

TEST(BrubeckDifferences, UnknownPathIs404) {
  // /brubeck with only '^/$' routed. Brubeck handed unrouted requests to its
  // base WebMessageHandler, which has no get(): "405 Method not allowed" with
  // "Allow: OPTIONS". We answer 404 Not Found.
  auto routes = one_route<SimpleWebHandlerObject>();
  auto got = parse_wire(serve_fixture(routes, kHttpRequestBrubeckFile));
  EXPECT_EQ(got.status_line, "HTTP/1.1 404 Not Found");
  EXPECT_EQ(got.body, "404 Not Found\n");
  EXPECT_EQ(got.headers, (HeaderSet{{"Content-Type", "text/plain; charset=utf-8"},
                                    {"Content-Length", std::to_string(got.body.size())}}));
}

TEST(BrubeckDifferences, OptionsIs204WithAllow) {
  // Brubeck: "200 OK" with "Access-Control-Allow-Methods: ['get', 'options']"
  // (a Python list's repr) and "Content-Length: 0". Ours: 204 No Content with
  // a standard Allow header, and no Content-Length (204 has no body).
  auto routes = one_route<SimpleWebHandlerObject>();
  auto frame =
      reframe(frame_of(kHttpRequestRootFile), R"("METHOD":"GET")", R"("METHOD":"OPTIONS")");
  auto got = parse_wire(serve(routes, request_from_wire(frame)));
  EXPECT_EQ(got.status_line, "HTTP/1.1 204 No Content");
  EXPECT_EQ(got.body, "");
  EXPECT_EQ(got.headers, (HeaderSet{{"Allow", "GET, HEAD, OPTIONS"}}));
}

TEST(BrubeckDifferences, HeadRunsGetWithoutTheBody) {
  // Brubeck: a handler without head() answered HEAD with 405. We run get()
  // and send its headers, Content-Length included, without the body.
  auto routes = one_route<SimpleWebHandlerObject>();
  auto frame = reframe(frame_of(kHttpRequestRootFile), R"("METHOD":"GET")", R"("METHOD":"HEAD")");
  auto want = http_response_object_root();
  want.resize(want.size() - kTestBodyObjectHandler.size());
  EXPECT_TRUE(matches_brubeck(serve(routes, request_from_wire(frame)), want, {kHtmlType}));
}

TEST(BrubeckDifferences, SecureCookieRoundTripThroughAHandler) {
  // Brubeck's signed cookies (set_cookie(..., secret=...)) pickled a
  // (name, value) tuple under an HMAC-MD5; ours sign name, value and time
  // with HMAC-SHA256. The round trip through a handler is the same.
  class SetSecure : public WebMessageHandler {
   public:
    void get() override {
      set_secure_cookie("key", "value");
      set_body(std::string(kTestBodyObjectHandler));
    }
  };
  class ReadSecure : public WebMessageHandler {
   public:
    void get() override { set_body(get_secure_cookie("key").value_or("<none>")); }
  };
  HandlerSettings settings;
  settings.cookie_signer =
      std::make_shared<const CookieSigner>(std::vector<std::string>{"my_key my_key my_key"});

  auto set_routes = one_route<SetSecure>();
  auto got = parse_wire(serve_fixture(set_routes, kHttpRequestRootFile, settings));
  ASSERT_EQ(got.status_line, "HTTP/1.1 200 OK");
  std::string cookie;
  for (const auto& [k, v] : got.headers)
    if (k == "Set-Cookie") cookie = v;
  ASSERT_EQ(cookie.rfind("key=", 0), 0u) << cookie;
  ASSERT_NE(cookie.find("; Path=/"), std::string::npos) << cookie;
  cookie = cookie.substr(0, cookie.find(';'));  // "key=<signed>"
  EXPECT_EQ(cookie.find("value"), std::string::npos);

  auto read_routes = one_route<ReadSecure>();
  auto with = [&](std::string_view sent) {
    auto frame = reframe(frame_of(kHttpRequestRootWithCookieFile), "key=value", std::string(sent));
    return parse_wire(serve(read_routes, request_from_wire(frame), settings)).body;
  };
  EXPECT_EQ(with(cookie), "value");
  EXPECT_EQ(with("key=value"), "<none>");  // the fixture's unsigned cookie
  std::string tampered = cookie;
  tampered[4] = tampered[4] == 'A' ? 'B' : 'A';
  EXPECT_EQ(with(tampered), "<none>");
}

}  // namespace
}  // namespace brubeck

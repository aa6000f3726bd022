// The WebMessageHandler API on its own: arguments from every source, JSON
// bodies, cookies and signed cookies, redirects, error pages.
#include <gtest/gtest.h>
#include <simdjson.h>

#include "brubeck/handlers/dispatch.hpp"
#include "brubeck/handlers/http_error.hpp"
#include "handlers/test_support.hpp"

namespace brubeck {
namespace {

using testing::make_request;

std::string header(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (iequals(k, name)) return v;
  return {};
}

std::vector<std::string> headers(const Response& r, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [k, v] : r.headers)
    if (iequals(k, name)) out.push_back(v);
  return out;
}

class Echo : public WebMessageHandler {
 public:
  void get() override {
    std::string out;
    for (const auto& [k, v] : arguments()) out += k + "=" + v + ";";
    // append(): GCC 12 warns falsely (-Wrestrict) on "literal" + std::string&&.
    out.append("|").append(get_argument("s", "none")).append("|");
    out.append(get_argument("s", "none", false));
    for (const auto& f : files()) out.append("|file:").append(f.name).append(":").append(f.body);
    set_body(out);
  }
  void post() override { get(); }
};

class JsonBody : public WebMessageHandler {
 public:
  void post() override {
    std::string_view name;
    if (request().json()["name"].get(name)) throw HttpError(422, "name missing");
    set_body(std::string(name));
  }
};

class Teapot : public WebMessageHandler {
 public:
  void get() override { throw HttpError(418); }
  void write_error(int status) override {
    set_status(status);
    set_body("custom page for " + std::to_string(status));
  }
};

class Cookies : public WebMessageHandler {
 public:
  void get() override {
    auto action = get_argument("do");
    if (action == "set") {
      CookieOptions options;
      options.http_only = true;
      set_cookie("a", "1", options);
      set_secure_cookie("s", "secret value");
    } else if (action == "clear") {
      delete_cookies();
    } else {
      set_body(get_cookie("a", "-") + "," + get_secure_cookie("s").value_or("-"));
    }
  }
};

class Redirects : public WebMessageHandler {
 public:
  void get() override { redirect("/there", std::stoi(get_argument("code", "302"))); }
};

class RedirectsToNext : public WebMessageHandler {
 public:
  void get() override { redirect_local(get_argument("next", "/")); }
};

class Whoami : public WebMessageHandler {
 public:
  void get() override {
    set_body(std::string(request().remote_addr()) + " " + request().full_url() + " " +
             request().content_type());
  }
};

RouteTable table() {
  std::vector<RouteSpec> specs;
  specs.push_back(class_route<Echo>("^/echo$"));
  specs.push_back(class_route<JsonBody>("^/json$"));
  specs.push_back(class_route<Teapot>("^/teapot$"));
  specs.push_back(class_route<Cookies>("^/cookies$"));
  specs.push_back(class_route<Redirects>("^/redirect$"));
  specs.push_back(class_route<RedirectsToNext>("^/next$"));
  specs.push_back(class_route<Whoami>("^/whoami$"));
  return RouteTable(std::move(specs));
}

HandlerSettings with_secret() {
  HandlerSettings s;
  s.cookie_signer =
      std::make_shared<CookieSigner>(std::vector<std::string>{"0123456789abcdef-secret"});
  return s;
}

TEST(WebHandler, ArgumentsMergeQueryAndUrlencodedBody) {
  auto t = table();
  auto d = dispatch(t, make_request("POST", "/echo", "a=1&s=+x+",
                                    {{"content-type", "application/x-www-form-urlencoded"}},
                                    "HTTP/1.1", "b=2&a=3&e="));
  EXPECT_EQ(d.response.body, "a=1;s= x ;b=2;a=3;|x| x ");
}

TEST(WebHandler, MultipartFieldsAndFiles) {
  std::string body =
      "--B\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n"
      "--B\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.txt\"\r\n\r\nDATA\r\n"
      "--B--\r\n";
  auto t = table();
  auto d = dispatch(
      t, make_request("POST", "/echo", {}, {{"content-type", "multipart/form-data; boundary=B"}},
                      "HTTP/1.1", body));
  EXPECT_EQ(d.response.body, "f=v;|none|none|file:up:DATA");
  auto bad = dispatch(
      t, make_request("POST", "/echo", {}, {{"content-type", "multipart/form-data; boundary=B"}},
                      "HTTP/1.1", "--B\r\nbroken"));
  EXPECT_EQ(bad.response.status, 400);
}

TEST(WebHandler, ControlCharactersAndOversizedBodiesAreRefused) {
  auto t = table();
  EXPECT_EQ(dispatch(t, make_request("GET", "/echo", "x=a%00b")).response.status, 400);
  EXPECT_EQ(dispatch(t, make_request("GET", "/echo", "x=a%09b")).response.status, 200)
      << "a tab is whitespace, not a control character to refuse";
  HandlerSettings small;
  small.max_body_bytes = 4;
  auto d = dispatch(
      t,
      make_request("POST", "/echo", {}, {{"content-type", "application/x-www-form-urlencoded"}},
                   "HTTP/1.1", "a=12345"),
      small);
  EXPECT_EQ(d.response.status, 413);
}

TEST(WebHandler, JsonBodyParsedOrRefused) {
  auto t = table();
  EXPECT_EQ(dispatch(t, make_request("POST", "/json", {}, {}, "HTTP/1.1", R"({"name":"ada"})"))
                .response.body,
            "ada");
  EXPECT_EQ(
      dispatch(t, make_request("POST", "/json", {}, {}, "HTTP/1.1", R"({"name":)")).response.status,
      400);
  EXPECT_EQ(
      dispatch(t, make_request("POST", "/json", {}, {}, "HTTP/1.1", R"({"x":1})")).response.status,
      422);
}

TEST(WebHandler, WriteErrorOverrideAndAppErrorPage) {
  auto t = table();
  auto d = dispatch(t, make_request("GET", "/teapot"));
  EXPECT_EQ(d.response.status, 418);
  EXPECT_EQ(d.response.body, "custom page for 418");
  HandlerSettings s;
  s.error_page = [](WebMessageHandler& h, int status) {
    h.set_header("Content-Type", "text/html");
    h.set_body("<h1>" + std::to_string(status) + "</h1>");
  };
  auto missing = dispatch(t, make_request("GET", "/nowhere"), s);
  EXPECT_EQ(missing.response.status, 404);
  EXPECT_EQ(missing.response.body, "<h1>404</h1>");
  auto not_allowed = dispatch(t, make_request("DELETE", "/echo"), s);
  EXPECT_EQ(not_allowed.response.status, 405);
  EXPECT_EQ(not_allowed.response.body, "<h1>405</h1>");
  EXPECT_EQ(header(not_allowed.response, "Allow"), "GET, HEAD, POST, OPTIONS");
}

TEST(WebHandler, CookiesAndSignedCookiesRoundTrip) {
  auto t = table();
  auto s = with_secret();
  auto set = dispatch(t, make_request("GET", "/cookies", "do=set"), s);
  auto lines = headers(set.response, "Set-Cookie");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "a=1; Path=/; HttpOnly");
  auto signed_pair = lines[1].substr(0, lines[1].find(';'));
  auto cookie = "a=1; " + signed_pair;
  auto read = dispatch(t, make_request("GET", "/cookies", {}, {{"cookie", cookie}}), s);
  EXPECT_EQ(read.response.body, "1,secret value");
  auto tampered = cookie;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  auto bad = dispatch(t, make_request("GET", "/cookies", {}, {{"cookie", tampered}}), s);
  EXPECT_EQ(bad.response.body, "1,-");
  // Two Cookie headers are both read.
  auto split = dispatch(
      t, make_request("GET", "/cookies", {}, {{"cookie", "x=y"}, {"cookie", signed_pair}}), s);
  EXPECT_EQ(split.response.body, "-,secret value");
  auto clear = dispatch(t, make_request("GET", "/cookies", "do=clear", {{"cookie", cookie}}), s);
  auto cleared = headers(clear.response, "Set-Cookie");
  ASSERT_EQ(cleared.size(), 2u);
  EXPECT_EQ(cleared[0].rfind("a=; ", 0), 0u);
  EXPECT_NE(cleared[0].find("Max-Age=0"), std::string::npos);
  // Without a secret, secure cookies are a server error, not a silent no-op.
  EXPECT_EQ(dispatch(t, make_request("GET", "/cookies", "do=set")).response.status, 500);
}

TEST(WebHandler, Redirects) {
  auto t = table();
  auto d = dispatch(t, make_request("GET", "/redirect"));
  EXPECT_EQ(d.response.status, 302);
  EXPECT_EQ(header(d.response, "Location"), "/there");
  for (int code : {301, 303, 307, 308})
    EXPECT_EQ(dispatch(t, make_request("GET", "/redirect", "code=" + std::to_string(code)))
                  .response.status,
              code);
  EXPECT_EQ(dispatch(t, make_request("GET", "/redirect", "code=200")).response.status, 500);
}

// A target from the client is followed only when every browser reads it as a
// path on this site; anything else is a 400, never a 500 or another host.
TEST(WebHandler, RedirectLocalRefusesOtherHosts) {
  auto t = table();
  for (const char* ok : {"%2F", "%2Fa%2Fb%3Fx%3D1", "%2F%2509%2Fevil.com"}) {
    SCOPED_TRACE(ok);
    auto d = dispatch(t, make_request("GET", "/next", std::string("next=") + ok));
    EXPECT_EQ(d.response.status, 302);
    EXPECT_EQ(header(d.response, "Location"), url_decode(ok));
  }
  for (const char* bad :
       {"%2F%09%2Fevil.com", "%2F%0A%2Fevil.com", "%2F%0D%0ASet-Cookie:x=1", "%2F%2Fevil.com",
        "%2F%5Cevil.com", "%5C%5Cevil.com", "http%3A%2F%2Fevil.com", "evil.com", "%2F%20%2Fx",
        "%2F%7F", "%09%2F%2Fevil.com"}) {
    SCOPED_TRACE(bad);
    auto d = dispatch(t, make_request("GET", "/next", std::string("next=") + bad));
    EXPECT_EQ(d.response.status, 400);
    EXPECT_EQ(header(d.response, "Location"), "");
  }
  EXPECT_TRUE(is_local_path("/"));
  EXPECT_FALSE(is_local_path(""));
  EXPECT_FALSE(is_local_path("//"));
}

// File names follow the arguments' rule (no control characters), and "."
// and ".." are refused: they name no file and walk a path.
TEST(WebHandler, BadFileNamesAreRefused) {
  auto t = table();
  auto upload = [&](const std::string& disposition) {
    const std::string body = "--B\r\nContent-Disposition: form-data; name=\"up\"; " + disposition +
                             "\r\n\r\nDATA\r\n--B--\r\n";
    return dispatch(t, make_request("POST", "/echo", {},
                                    {{"content-type", "multipart/form-data; boundary=B"}},
                                    "HTTP/1.1", body))
        .response;
  };
  EXPECT_EQ(upload("filename=\"a.txt\"").status, 200);
  EXPECT_EQ(upload("filename=\"..a.txt\"").status, 200);
  static constexpr char kNul[] = "filename=\"a\0b.txt\"";
  EXPECT_EQ(upload(std::string(kNul, sizeof kNul - 1)).status, 400);
  EXPECT_EQ(upload("filename*=UTF-8''a%00b.txt").status, 400);
  EXPECT_EQ(upload("filename*=UTF-8''a%0Ab.txt").status, 400);
  EXPECT_EQ(upload("filename=\"a/..\"").status, 400);
  EXPECT_EQ(upload("filename=\"..\"").status, 400);
  EXPECT_EQ(upload("filename=\"C:\\dir\\.\"").status, 400);
}

TEST(WebHandler, RequestAddressingHelpers) {
  auto t = table();
  auto d = dispatch(t, make_request("GET", "/whoami", {},
                                    {{"x-forwarded-for", "10.1.2.3, 127.0.0.1"},
                                     {"host", "example.org:6767"},
                                     {"content-type", "Text/Plain; charset=utf-8"},
                                     {"URL_SCHEME", "https"}}));
  EXPECT_EQ(d.response.body, "10.1.2.3 https://example.org:6767/whoami text/plain");
  auto d2 = dispatch(
      t, make_request("GET", "/whoami", "q=1", {{"REMOTE_ADDR", "127.0.0.9"}, {"host", "h"}}));
  EXPECT_EQ(d2.response.body, "127.0.0.9 http://h/whoami?q=1 ");
}

}  // namespace
}  // namespace brubeck

// The testing kit for application authors: a TestClient sends requests to an
// App's routes in process, without Mongrel2, and hands back what a browser
// would have read. Each request is encoded as the frame Mongrel2 would send,
// decoded by the shard's codec and dispatched on a fiber of a real FiberHub
// and Reactor (on the calling thread), so routing, 404 and 405, the handler
// lifecycle, check_request hooks (CSRF, login_required), error pages,
// deadlines, services (App::provide: templates, sessions...) and waits on
// databases or the offload pool all behave as on a shard. A cookie jar keeps
// what replies set and sends it back, so signed cookies, sessions and the
// `_xsrf` token work across requests; redirects are followed on request.
//
//   brubeck::App app(config);
//   app.route<Hello>("^/hello$");
//   brubeck::testing::TestClient client(app);
//   auto r = client.get("/hello?name=x");
//   EXPECT_EQ(r.status, 200);
//   EXPECT_EQ(r.header("content-type"), "text/plain; charset=UTF-8");
//   auto created = client.post_json("/api/items", {{"name", "a"}});
//   EXPECT_EQ(created.json()["name"], "a");
//
// Limits, where a test needs the real server (tests against Mongrel2):
// - what the shard decides before a handler runs is not done here: header
//   and body size limits (431, 413 before dispatch), max_in_flight (503),
//   large uploads spooled by Mongrel2, WebSocket refusal;
// - actors declared with App::actor are not spawned (no actor system), so
//   a handler that asks one fails;
// - a deferred reply must be finished by a fiber of the same client (a
//   timer, a child fiber) before `timeout`: requests are sent one at a time;
// - deliver() to other connections is recorded (delivered()), not sent;
// - the jar ignores Domain, Secure and Expires (Max-Age=0 deletes); Path
//   is honoured.
// The client snapshots the app's routes and settings at its first request:
// declare routes and services first. One client per thread; it is not
// thread-safe, but several clients may serve one App.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "brubeck/handlers/routes.hpp"
#include "brubeck/handlers/settings.hpp"

namespace brubeck {

class App;

namespace testing {

/// Header lines or form fields, in order; a name may repeat.
using Fields = std::vector<std::pair<std::string, std::string>>;

/// One file of a multipart/form-data body (TestClient::post_multipart).
struct UploadFile {
  std::string field;     ///< the form field's name
  std::string filename;  ///< what the browser says the file was called
  std::string content;
  std::string content_type = "application/octet-stream";
};

/// A request as the client sends it: the method, the target (path and an
/// optional "?query", as in a URL), headers and body.
struct TestRequest {
  std::string method = "GET";
  std::string target = "/";
  Fields headers{};  ///< sent as given; Cookie here replaces the jar's
  std::string body{};
  /// Follow 3xx replies; unset: the client's setting.
  std::optional<bool> follow_redirects{};
};

/// What came back: the status line, the headers in the order sent, the body
/// (de-chunked when streamed) and the exact bytes.
struct TestResponse {
  int status = 0;
  std::string reason;
  Fields headers;
  std::string body;
  /// The reply's bytes as the shard would have sent them (for the last
  /// request when redirects were followed).
  std::string raw;
  /// Sent with Transfer-Encoding: chunked (start_stream).
  bool streamed = false;
  /// Finished later by a DeferredReply (defer()).
  bool deferred = false;
  /// The server closed the connection after the reply (Connection: close,
  /// a stream cut short by an error).
  bool closed = false;
  /// The target that was answered, and the ones redirected from, in order.
  std::string target;
  std::vector<std::string> redirects;

  /// The first header named `name`, compared without regard to case; ""
  /// when none.
  std::string header(std::string_view name) const;
  /// The same, or nullopt when absent.
  std::optional<std::string> find_header(std::string_view name) const;
  /// Every header named `name`, in order (Set-Cookie lines, ...).
  std::vector<std::string> header_values(std::string_view name) const;
  bool has_header(std::string_view name) const { return find_header(name).has_value(); }
  /// The body parsed as JSON; std::runtime_error (with the body) when it is
  /// not JSON.
  nlohmann::json json() const;
  /// 2xx.
  bool ok() const noexcept { return status >= 200 && status < 300; }
};

/// The cookies a TestClient holds: set by replies (Set-Cookie), sent back on
/// every request whose path lies under the cookie's Path. A test may read,
/// plant or remove them like a browser's cookie store.
class CookieJar {
 public:
  /// The cookie's value, or nullopt.
  std::optional<std::string> get(std::string_view name) const;
  /// The cookie's value, or "" when absent.
  std::string value(std::string_view name) const { return get(name).value_or(""); }
  bool contains(std::string_view name) const { return get(name).has_value(); }
  /// Sets (or replaces) a cookie, as a reply would, for `path` and below.
  void set(std::string name, std::string value, std::string path = "/");
  void erase(std::string_view name);
  void clear() { cookies_.clear(); }
  std::size_t size() const noexcept { return cookies_.size(); }
  /// Name to value, for every cookie held.
  std::map<std::string, std::string> all() const;

  /// The Cookie header for a request to `path` ("" when nothing matches).
  std::string header_for(std::string_view path) const;
  /// Takes the Set-Cookie lines of a reply.
  void update(const Fields& reply_headers);

 private:
  struct Cookie {
    std::string value;
    std::string path;
  };
  std::map<std::string, Cookie, std::less<>> cookies_;
};

struct TestClientOptions {
  /// REMOTE_ADDR (and x-forwarded-for) of every request: what
  /// Request::remote_addr() reads, e.g. for login throttling.
  std::string remote_addr = "127.0.0.1";
  /// The Host header and URL scheme (Request::full_url()).
  std::string host = "localhost";
  std::string scheme = "http";
  /// Follow redirects (301, 302, 303, 307, 308) by default. 303, and 301 or
  /// 302 after a POST, become a GET without a body; 307 and 308 repeat the
  /// request.
  bool follow_redirects = false;
  int max_redirects = 10;
  /// How long one request may take before the client gives up (the request
  /// is then cancelled and std::runtime_error thrown).
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
};

/// Sends requests to an App's routes in process; see the file's comment.
class TestClient {
 public:
  explicit TestClient(const App& app, TestClientOptions options = {});
  /// Without an App: routes and handler settings as a shard gets them.
  explicit TestClient(
      std::vector<RouteSpec> routes,
      std::shared_ptr<const HandlerSettings> settings = std::make_shared<const HandlerSettings>(),
      TestClientOptions options = {});
  ~TestClient();
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  /// `target` is a path with an optional query: "/items?page=2".
  TestResponse get(std::string_view target, const Fields& headers = {});
  TestResponse head(std::string_view target, const Fields& headers = {});
  TestResponse options(std::string_view target, const Fields& headers = {});
  TestResponse delete_(std::string_view target, const Fields& headers = {});
  /// A raw body; give its Content-Type in `headers`.
  TestResponse post(std::string_view target, std::string body = {}, const Fields& headers = {});
  TestResponse put(std::string_view target, std::string body = {}, const Fields& headers = {});
  TestResponse patch(std::string_view target, std::string body = {}, const Fields& headers = {});
  /// An application/x-www-form-urlencoded body, as a browser submits a
  /// form. A PageHandler wants the `_xsrf` field: `{"_xsrf", client.xsrf_token()}`.
  TestResponse post_form(std::string_view target, const Fields& form, const Fields& headers = {});
  /// An application/json body.
  TestResponse post_json(std::string_view target, const nlohmann::json& body,
                         const Fields& headers = {});
  TestResponse put_json(std::string_view target, const nlohmann::json& body,
                        const Fields& headers = {});
  TestResponse patch_json(std::string_view target, const nlohmann::json& body,
                          const Fields& headers = {});
  /// A multipart/form-data body with plain fields and files.
  TestResponse post_multipart(std::string_view target, const Fields& fields,
                              const std::vector<UploadFile>& files, const Fields& headers = {});
  /// Any method, with a raw body.
  TestResponse request(std::string_view method, std::string_view target, std::string body = {},
                       const Fields& headers = {});
  TestResponse fetch(const TestRequest& request);

  CookieJar& cookies() noexcept { return jar_; }
  const CookieJar& cookies() const noexcept { return jar_; }
  /// The `_xsrf` cookie's value, which the CSRF check accepts as the token
  /// (form field `_xsrf` or header X-XSRFToken); "" before a page set it.
  std::string xsrf_token() const { return jar_.value("_xsrf"); }

  /// Sent with every request (a request's own header of that name wins).
  void set_default_header(std::string name, std::string value);
  void follow_redirects(bool follow) noexcept { options_.follow_redirects = follow; }
  TestClientOptions& options() noexcept { return options_; }

  /// What handlers sent with deliver(): each message with the connection
  /// ids it went to, oldest first.
  struct Delivery {
    std::vector<std::string> conn_ids;
    std::string bytes;
  };
  const std::vector<Delivery>& delivered() const noexcept;

  /// Runs `body` as a fiber of the client's hub, as the test's own code
  /// sometimes must (seeding a store that waits on a database, say);
  /// rethrows what escapes it.
  void run(const std::function<void()>& body);

 private:
  struct Impl;
  TestResponse send_once(const TestRequest& request);
  TestClientOptions options_;
  CookieJar jar_;
  Fields default_headers_;
  std::unique_ptr<Impl> impl_;
};

/// application/x-www-form-urlencoded text of `form` (percent-encoded).
std::string encode_form(const Fields& form);

}  // namespace testing
}  // namespace brubeck

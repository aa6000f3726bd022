// Brubeck's handler classes. A new handler object serves each request:
// initialize(), check_request(), prepare(), the method function (get, post,
// ...), on_finish(), then render() builds the reply. Method functions not
// overridden answer 405.
//
//   MessageHandler      payload of key/value pairs, rendered as JSON
//   WebMessageHandler   HTTP: set_body, set_json, add_header, get_argument, ...
//   JSONMessageHandler  a WebMessageHandler whose reply is its JSON payload
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "brubeck/handlers/cookies.hpp"
#include "brubeck/handlers/multipart.hpp"
#include "brubeck/handlers/reply_channel.hpp"
#include "brubeck/handlers/request.hpp"
#include "brubeck/handlers/response.hpp"
#include "brubeck/handlers/settings.hpp"

namespace brubeck {

// True for a path on this site that every browser reads as one: it starts
// with a single "/", holds no backslash (read as "/" by browsers) and no
// control character or space (browsers drop tabs and newlines, so
// "/\t/evil.com" becomes "//evil.com", another host).
bool is_local_path(std::string_view target) noexcept;

struct RouteMatch;
class RouteTable;

class MessageHandler {
 public:
  MessageHandler();
  virtual ~MessageHandler();
  MessageHandler(const MessageHandler&) = delete;
  MessageHandler& operator=(const MessageHandler&) = delete;

  // Lifecycle hooks, in this order.
  virtual void initialize() {}
  // Run by the dispatcher after initialize(): a handler
  // family's own checks (a CSRF token, a required login) that an
  // application's prepare() cannot skip by forgetting to call its base.
  // False when the reply is already made (a redirect): prepare() and the
  // method are then skipped. Refusals throw HttpError.
  virtual bool check_request() { return true; }
  virtual void prepare() {}
  virtual void on_finish() {}

  // One function per HTTP method. `head` defaults to `get` (the body is then
  // dropped); `options` answers 204 with Allow unless overridden.
  virtual void get() { unsupported(); }
  virtual void post() { unsupported(); }
  virtual void put() { unsupported(); }
  virtual void patch() { unsupported(); }
  virtual void delete_() { unsupported(); }
  virtual void head() { get(); }
  virtual void options();
  // Called for a method the handler does not implement: 405.
  virtual void unsupported();
  // Mongrel2 started spooling a large body for this route. Return false (or
  // throw HttpError) to refuse it early: the client gets 413 and Mongrel2
  // cancels the upload. The default accepts what fits the body limit.
  virtual bool accept_upload(std::size_t content_length);

  void set_status(int code, std::string_view message = {});
  int status_code() const noexcept { return response_.status; }
  std::string_view status_msg() const noexcept;

  // The request (Brubeck's `self.message`).
  const Request& message() const noexcept { return *request_; }
  const Request& request() const noexcept { return *request_; }

  // The route's capture groups: every group by position (from 0), named
  // groups also by name. Missing ones read as "" (or `fallback`).
  const std::vector<std::string>& url_args() const noexcept;
  std::string_view get_url_arg(std::size_t index, std::string_view fallback = {}) const noexcept;
  std::string_view get_url_arg(std::string_view name,
                               std::string_view fallback = {}) const noexcept;

  // Brubeck's payload: key/value pairs rendered as a JSON object. A key set
  // twice keeps its first position and its last value. payload() is the
  // object itself (keys in insertion order), for any JSON value:
  // `payload()["items"] = nlohmann::json::array();`.
  nlohmann::ordered_json& payload();
  void add_to_payload(std::string_view key, std::string_view value);
  void add_to_payload(std::string_view key, const char* value) {
    add_to_payload(key, std::string_view(value));
  }
  void add_to_payload(std::string_view key, std::int64_t value);
  void add_to_payload(std::string_view key, int value) {
    add_to_payload(key, static_cast<std::int64_t>(value));
  }
  void add_to_payload(std::string_view key, double value);
  void add_to_payload(std::string_view key, bool value);
  // `json` must be JSON text (an object, a list, ...); text that does not
  // parse throws std::invalid_argument.
  void add_raw_to_payload(std::string_view key, std::string_view json);
  // Leave status_code/status_msg out of the rendered payload.
  void hide_status(bool hide = true) noexcept { hide_status_ = hide; }
  // The payload as JSON text, with status (unless hidden) and timestamp;
  // invalid UTF-8 in it is replaced by U+FFFD.
  std::string render_payload() const;

  // Builds the reply from the handler's state. Called once, after on_finish.
  virtual Response render();

  // Fills the reply for an error status (404, 405, 500, an HttpError...).
  // The default uses the app's error page if set, else a short text body;
  // override it for the handler's own error pages.
  virtual void write_error(int status);

  // Leaves the reply for later: the framework sends nothing when the method
  // returns, and whoever holds the DeferredReply finishes it.
  DeferredReply defer();

  // Streams the reply in chunks (Transfer-Encoding: chunked): start_stream
  // sends the status and headers set so far, each write_chunk one chunk, and
  // finish_stream (called for you if you don't) the last one.
  void start_stream();
  void write_chunk(std::string_view data);
  void finish_stream();

  // Sends `bytes` (a complete HTTP message) to other connections of the same
  // Mongrel2 server, up to 100 per frame: Brubeck's deliver().
  void deliver(std::span<const std::string_view> conn_ids, std::string_view bytes);

  // Reverse routing through the app's route table (RouteTable::url_for):
  // `url_for("user", {"42"})` -> "/user/42".
  std::string url_for(std::string_view route_name, const std::vector<std::string>& args = {}) const;

  // The app's service of type T (App::provide); std::logic_error if none.
  template <class T>
  T& service() const {
    return settings().services->get<T>();
  }
  // The same, or null when the app provided none.
  template <class T>
  T* find_service() const noexcept {
    return settings().services->find<T>();
  }

  // --- used by the dispatcher ---
  void set_route_table(const RouteTable* routes) noexcept { routes_ = routes; }
  void bind(const Request& request, const RouteMatch& match, const HandlerSettings& settings,
            ReplyChannel* channel = nullptr);
  Response& response() noexcept { return response_; }
  // True when the handler took the reply over (deferred or streamed).
  bool reply_taken() const noexcept { return deferred_ || streaming_; }
  // True when a DeferredReply, not this call, finishes the reply.
  bool deferred() const noexcept { return deferred_; }
  // Closes the connection of an unfinished stream (after an error).
  void abort_stream();

 protected:
  const HandlerSettings& settings() const noexcept { return *settings_; }
  Response response_;

 private:
  const Request* request_ = nullptr;
  const RouteMatch* match_ = nullptr;
  const HandlerSettings* settings_ = nullptr;
  ReplyChannel* channel_ = nullptr;
  const RouteTable* routes_ = nullptr;
  bool deferred_ = false;
  bool streaming_ = false;
  bool stream_done_ = false;
  ReplyChannel& channel() const;
  // Part of this request's reply; `last` ends it.
  void send_raw(std::string_view bytes, bool last = false);
  // Made on first use: most handlers have no payload.
  std::unique_ptr<nlohmann::ordered_json> payload_;
  bool hide_status_ = false;
};

class WebMessageHandler : public MessageHandler {
 public:
  void set_body(std::string body) { response_.body = std::move(body); }
  const std::string& body() const noexcept { return response_.body; }
  // The body as `value`'s JSON text, Content-Type application/json.
  // Invalid UTF-8 in strings is replaced by U+FFFD, never sent.
  void set_json(const nlohmann::json& value);
  void set_json(const nlohmann::ordered_json& value);
  // Adds a header line; CR/LF in it throws std::invalid_argument.
  void add_header(std::string_view name, std::string_view value) {
    response_.add_header(name, value);
  }
  void set_header(std::string_view name, std::string_view value) {
    response_.set_header(name, value);
  }
  void clear_headers() { response_.headers.clear(); }

  // Arguments from the query string and, for POST, PUT and PATCH, from an
  // application/x-www-form-urlencoded or multipart/form-data body (plain
  // fields), in that order; percent- and plus-decoded, empty values dropped.
  // A value with control characters is refused: HttpError(400). A body over
  // the limits is HttpError(413), a malformed one HttpError(400).
  const std::vector<std::pair<std::string, std::string>>& arguments() const;
  // First value of an argument, stripped of surrounding whitespace unless
  // strip is false; `fallback` when absent.
  std::string get_argument(std::string_view name, std::string_view fallback = {},
                           bool strip = true) const;
  std::vector<std::string> get_arguments(std::string_view name, bool strip = true) const;
  // The file parts of a multipart/form-data body (views into the body).
  const std::vector<FormPart>& files() const;

  // Cookies sent by the client (the first of a repeated name wins).
  std::optional<std::string> get_cookie(std::string_view name) const;
  std::string get_cookie(std::string_view name, std::string_view fallback) const {
    return get_cookie(name).value_or(std::string(fallback));
  }
  // Each adds its own Set-Cookie line; bad names or values throw
  // std::invalid_argument.
  void set_cookie(std::string_view name, std::string_view value, const CookieOptions& options = {});
  void delete_cookie(std::string_view name, std::string_view path = "/",
                     std::string_view domain = {});
  // Deletes every cookie the client sent.
  void delete_cookies();
  // Signed with the app's cookie_secret (value, time and HMAC-SHA256); a
  // tampered, expired or unsigned value reads as absent. Without a
  // cookie_secret configured these throw std::logic_error.
  void set_secure_cookie(std::string_view name, std::string_view value,
                         const CookieOptions& options = {});
  std::optional<std::string> get_secure_cookie(std::string_view name) const;
  std::optional<std::string> get_secure_cookie(std::string_view name,
                                               std::chrono::seconds max_age) const;

  // Redirects with 302 (or 301, 303, 307, 308) to `url`.
  void redirect(std::string_view url, int status = 302);
  // The same for a target that came from the client (`?next=`, `?to=`):
  // only a local path (is_local_path) is followed; anything else is the
  // client's error, HttpError(400), so the app is no open redirect.
  void redirect_local(std::string_view path, int status = 302);

  Response render() override;
  // The app's error page when configured, else MessageHandler's.
  void write_error(int status) override;

 private:
  void parse_body_arguments() const;
  mutable bool body_parsed_ = false;
  mutable std::vector<std::pair<std::string, std::string>> arguments_;  // query + body
  // What arguments() returns: arguments_, or the Request's query arguments.
  mutable const std::vector<std::pair<std::string, std::string>>* args_ = nullptr;
  mutable std::vector<FormPart> files_;
};

class JSONMessageHandler : public WebMessageHandler {
 public:
  Response render() override;
};

}  // namespace brubeck

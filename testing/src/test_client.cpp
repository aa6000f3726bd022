#include "brubeck/testing.hpp"

#include <boost/context/detail/exception.hpp>

#include <charconv>
#include <exception>
#include <stdexcept>
#include <unordered_map>

#include "brubeck/actors/app.hpp"
#include "brubeck/handlers/dispatch.hpp"
#include "brubeck/handlers/reply_channel.hpp"
#include "brubeck/handlers/request.hpp"
#include "brubeck/pipeline/codec.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"
#include "brubeck/pipeline/reactor.hpp"

namespace brubeck::testing {

namespace {

using forced_unwind = boost::context::detail::forced_unwind;

constexpr std::string_view kSender = "brubeck-testing";

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void append_netstring(std::string& out, std::string_view data) {
  out += std::to_string(data.size());
  out += ':';
  out += data;
  out += ',';
}

// The request as Mongrel2 would frame it (JSON headers: the browser's
// lower-cased, a repeated one as an array, Mongrel2's own keys last).
std::string encode_frame(std::string_view conn_id, const std::string& method,
                         const std::string& path, const std::string& query, const Fields& headers,
                         const TestClientOptions& options, const std::string& body) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  for (const auto& [name, value] : headers) {
    auto key = lower(name);
    auto it = h.find(key);
    if (it == h.end())
      h[key] = value;
    else if (it->is_array())
      it->push_back(value);
    else
      *it = nlohmann::ordered_json::array({*it, value});
  }
  h["PATH"] = path;
  h["METHOD"] = method;
  h["VERSION"] = "HTTP/1.1";
  h["URI"] = query.empty() ? path : path + "?" + query;
  if (!query.empty()) h["QUERY"] = query;
  h["PATTERN"] = "/";
  h["URL_SCHEME"] = options.scheme;
  h["REMOTE_ADDR"] = options.remote_addr;
  std::string frame;
  frame.reserve(body.size() + 512);
  frame += kSender;
  frame += ' ';
  frame += conn_id;
  frame += ' ';
  frame += path;
  frame += ' ';
  append_netstring(frame, h.dump());
  append_netstring(frame, body);
  return frame;
}

// Splits reply bytes into status, headers and body (de-chunked). `head`:
// the reply to a HEAD request, whose Content-Length announces no body.
void parse_reply(std::string_view raw, bool head, TestResponse& out) {
  auto end = raw.find("\r\n\r\n");
  if (end == std::string_view::npos)
    throw std::runtime_error("TestClient: reply without a complete head: " + std::string(raw));
  auto head_text = raw.substr(0, end);
  auto body = raw.substr(end + 4);
  auto line_end = head_text.find("\r\n");
  auto status_line = head_text.substr(0, line_end);
  // "HTTP/1.1 200 OK"
  auto sp = status_line.find(' ');
  if (sp == std::string_view::npos)
    throw std::runtime_error("TestClient: bad status line: " + std::string(status_line));
  auto rest = status_line.substr(sp + 1);
  std::from_chars(rest.data(), rest.data() + rest.size(), out.status);
  auto sp2 = rest.find(' ');
  out.reason = sp2 == std::string_view::npos ? "" : std::string(rest.substr(sp2 + 1));
  out.headers.clear();
  while (line_end != std::string_view::npos) {
    head_text.remove_prefix(line_end + 2);
    line_end = head_text.find("\r\n");
    auto line = head_text.substr(0, line_end);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    out.headers.emplace_back(std::string(line.substr(0, colon)),
                             std::string(trim(line.substr(colon + 1))));
  }
  out.streamed = iequals(out.header("Transfer-Encoding"), "chunked");
  out.body.clear();
  if (head) return;
  if (!out.streamed) {
    std::size_t length = body.size();
    if (auto cl = out.find_header("Content-Length"))
      std::from_chars(cl->data(), cl->data() + cl->size(), length);
    out.body.assign(body.substr(0, std::min(length, body.size())));
    return;
  }
  // Chunks: HEX\r\nDATA\r\n ... 0\r\n\r\n. A stream cut short keeps what came.
  while (!body.empty()) {
    auto eol = body.find("\r\n");
    if (eol == std::string_view::npos) break;
    std::size_t size = 0;
    auto [p, ec] = std::from_chars(body.data(), body.data() + eol, size, 16);
    (void)p;
    if (ec != std::errc()) throw std::runtime_error("TestClient: bad chunk size in the reply");
    if (size == 0) break;
    body.remove_prefix(eol + 2);
    out.body.append(body.substr(0, size));
    body.remove_prefix(std::min(body.size(), size + 2));
  }
}

// The path and query of a Location: an absolute URL loses its scheme and
// host; a relative one is taken against the directory of `from`.
std::string redirect_target(std::string_view location, std::string_view from) {
  if (auto scheme = location.find("://"); scheme != std::string_view::npos) {
    auto slash = location.find('/', scheme + 3);
    return slash == std::string_view::npos ? "/" : std::string(location.substr(slash));
  }
  if (location.starts_with("//")) {
    auto slash = location.find('/', 2);
    return slash == std::string_view::npos ? "/" : std::string(location.substr(slash));
  }
  if (location.starts_with("/")) return std::string(location);
  auto from_path = from.substr(0, from.find('?'));
  return std::string(from_path.substr(0, from_path.rfind('/') + 1)) + std::string(location);
}

}  // namespace

// --- TestResponse ---

std::optional<std::string> TestResponse::find_header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return std::nullopt;
}

std::string TestResponse::header(std::string_view name) const {
  return find_header(name).value_or("");
}

std::vector<std::string> TestResponse::header_values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) out.push_back(v);
  return out;
}

nlohmann::json TestResponse::json() const {
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(std::string("TestResponse::json: the body is not JSON (") + e.what() +
                             "): " + body);
  }
}

// --- CookieJar ---

std::optional<std::string> CookieJar::get(std::string_view name) const {
  auto it = cookies_.find(name);
  if (it == cookies_.end()) return std::nullopt;
  return it->second.value;
}

void CookieJar::set(std::string name, std::string value, std::string path) {
  if (path.empty() || path.front() != '/') path = "/";
  cookies_[std::move(name)] = Cookie{std::move(value), std::move(path)};
}

void CookieJar::erase(std::string_view name) {
  if (auto it = cookies_.find(name); it != cookies_.end()) cookies_.erase(it);
}

std::map<std::string, std::string> CookieJar::all() const {
  std::map<std::string, std::string> out;
  for (const auto& [k, c] : cookies_) out.emplace(k, c.value);
  return out;
}

std::string CookieJar::header_for(std::string_view path) const {
  std::string out;
  for (const auto& [name, c] : cookies_) {
    // RFC 6265 5.1.4: the cookie's path is the request path or a prefix of
    // it ending at a '/'.
    const bool matches = path == c.path || (path.starts_with(c.path) &&
                                            (c.path.back() == '/' || path[c.path.size()] == '/'));
    if (!matches) continue;
    if (!out.empty()) out += "; ";
    out += name;
    out += '=';
    out += c.value;
  }
  return out;
}

void CookieJar::update(const Fields& reply_headers) {
  for (const auto& [k, v] : reply_headers) {
    if (!iequals(k, "Set-Cookie")) continue;
    std::string_view line = v;
    auto semi = line.find(';');
    auto pair = trim(line.substr(0, semi));
    auto eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name(trim(pair.substr(0, eq)));
    std::string value(trim(pair.substr(eq + 1)));
    std::string path = "/";
    bool expired = false;
    while (semi != std::string_view::npos) {
      line.remove_prefix(semi + 1);
      semi = line.find(';');
      auto attr = trim(line.substr(0, semi));
      auto aeq = attr.find('=');
      auto aname = trim(attr.substr(0, aeq));
      auto avalue = aeq == std::string_view::npos ? std::string_view{} : trim(attr.substr(aeq + 1));
      if (iequals(aname, "Path")) {
        path = std::string(avalue);
      } else if (iequals(aname, "Max-Age")) {
        long long seconds = 1;
        std::from_chars(avalue.data(), avalue.data() + avalue.size(), seconds);
        expired = seconds <= 0;
      }
    }
    if (expired)
      erase(name);
    else
      set(std::move(name), std::move(value), std::move(path));
  }
}

// --- TestClient ---

struct TestClient::Impl final : ReplyChannel {
  // One request's reply as it arrives.
  struct Exchange {
    std::string raw;
    bool fiber_done = false;  // the request's fiber has ended
    bool reply_done = false;  // every byte of the reply is in
    bool deferred = false;
    bool closed = false;
  };

  const App* app = nullptr;
  std::vector<RouteSpec> specs;
  std::shared_ptr<const HandlerSettings> settings;
  std::optional<RouteTable> table;
  FiberHub hub;
  Reactor reactor{&hub};
  FrameDecoder decoder;
  std::uint64_t next_conn = 1;
  std::unordered_map<std::string, Exchange*> open;
  std::vector<Delivery> deliveries;

  void ensure_table() {
    if (table) return;
    if (app != nullptr) {
      specs = app->routes();
      settings = app->handler_settings();
    }
    table.emplace(std::move(specs));
  }

  void send_reply(std::string_view sender, std::string_view conn_id, std::uint64_t,
                  std::string_view bytes, bool last) override {
    auto it = open.find(std::string(conn_id));
    if (sender != kSender || it == open.end()) return;  // a request the client gave up on
    auto& ex = *it->second;
    if (bytes.empty())
      ex.closed = true;  // Mongrel2 closes a connection on empty bytes
    else
      ex.raw.append(bytes);
    if (last) ex.reply_done = true;
  }

  void send(std::string_view, std::span<const std::string_view> conn_ids,
            std::string_view bytes) override {
    Delivery d;
    for (auto id : conn_ids) d.conn_ids.emplace_back(id);
    d.bytes.assign(bytes);
    deliveries.push_back(std::move(d));
  }

  // Runs the loop until `done` or the client's timeout; false on timeout.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    if (done()) return true;
    auto timed_out = std::make_shared<bool>(false);
    auto watchdog = hub.spawn([this, timed_out, until = Clock::now() + timeout] {
      try {
        hub.sleep_until(until);
        *timed_out = true;
      } catch (const FiberCancelled&) {
      }
    });
    reactor.run_until([&] { return *timed_out || done(); });
    if (!hub.finished(watchdog)) {
      hub.cancel(watchdog);
      reactor.run_until([&] { return hub.finished(watchdog); });
    }
    return !*timed_out;
  }
};

TestClient::TestClient(const App& app, TestClientOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  impl_->app = &app;
}

TestClient::TestClient(std::vector<RouteSpec> routes,
                       std::shared_ptr<const HandlerSettings> settings, TestClientOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  impl_->specs = std::move(routes);
  impl_->settings = settings ? std::move(settings) : std::make_shared<const HandlerSettings>();
}

TestClient::~TestClient() = default;

void TestClient::set_default_header(std::string name, std::string value) {
  for (auto& [k, v] : default_headers_)
    if (iequals(k, name)) {
      v = std::move(value);
      return;
    }
  default_headers_.emplace_back(std::move(name), std::move(value));
}

const std::vector<TestClient::Delivery>& TestClient::delivered() const noexcept {
  return impl_->deliveries;
}

void TestClient::run(const std::function<void()>& body) {
  std::exception_ptr error;
  bool done = false;
  auto ref = impl_->hub.spawn([&] {
    try {
      body();
    } catch (const forced_unwind&) {
      throw;
    } catch (const FiberCancelled&) {
      error = std::make_exception_ptr(
          std::runtime_error("TestClient::run: the fiber did not finish within the timeout"));
    } catch (...) {
      error = std::current_exception();
    }
    done = true;
  });
  if (!impl_->run_until([&] { return done; }, options_.timeout)) {
    impl_->hub.cancel(ref);
    impl_->reactor.run_until([&] { return done; });
  }
  if (error) std::rethrow_exception(error);
}

TestResponse TestClient::send_once(const TestRequest& req) {
  auto& impl = *impl_;
  impl.ensure_table();
  const auto q = req.target.find('?');
  const std::string path = req.target.substr(0, q);
  const std::string query = q == std::string::npos ? "" : req.target.substr(q + 1);
  if (path.empty() || path.front() != '/')
    throw std::invalid_argument("TestClient: the target must start with '/': " + req.target);

  // Headers: the request's own, then the client's defaults and the jar's
  // cookies where the request did not give them.
  Fields headers = req.headers;
  auto has = [&headers](std::string_view name) {
    for (const auto& [k, v] : headers)
      if (iequals(k, name)) return true;
    return false;
  };
  for (const auto& [k, v] : default_headers_)
    if (!has(k)) headers.emplace_back(k, v);
  if (!has("host")) headers.emplace_back("host", options_.host);
  if (!has("cookie"))
    if (auto cookie = jar_.header_for(path); !cookie.empty())
      headers.emplace_back("cookie", cookie);
  if (!req.body.empty() && !has("content-length"))
    headers.emplace_back("content-length", std::to_string(req.body.size()));
  if (!has("x-forwarded-for")) headers.emplace_back("x-forwarded-for", options_.remote_addr);

  const std::string conn_id = std::to_string(impl.next_conn++);
  auto bytes = std::make_shared<const std::string>(
      encode_frame(conn_id, req.method, path, query, headers, options_, req.body));
  Frame frame;
  const auto err = impl.decoder.decode(*bytes, frame);
  if (frame_action(*bytes, err, frame) != FrameAction::serve)
    throw std::invalid_argument("TestClient: cannot frame " + req.method + " " + req.target + ": " +
                                std::string(to_string(err)));

  Impl::Exchange ex;
  impl.open.emplace(conn_id, &ex);
  struct Close {
    Impl& impl;
    const std::string& id;
    ~Close() { impl.open.erase(id); }
  } close{impl, conn_id};

  const bool head = req.method == "HEAD";
  auto ref = impl.hub.spawn([&impl, &ex, frame = std::move(frame),
                             storage = std::shared_ptr<const void>(bytes)]() mutable {
    try {
      Request request(std::move(frame), std::move(storage), 0, 1);
      auto result = dispatch(*impl.table, request, *impl.settings, &impl);
      if (!result.sent) {
        // As the shard sends it.
        if (request.should_close()) {
          result.response.set_header("Connection", "close");
          ex.closed = true;
        }
        result.response.serialize(ex.raw, result.include_body);
        ex.reply_done = true;
      } else if (!result.deferred) {
        ex.reply_done = true;  // a stream: its last bytes are in
      } else {
        ex.deferred = true;
      }
    } catch (const FiberCancelled&) {
      // The client gave up on it (timeout).
    }
    ex.fiber_done = true;
  });

  const bool in_time =
      impl.run_until([&ex] { return ex.fiber_done && ex.reply_done; }, options_.timeout);
  if (!in_time) {
    if (!ex.fiber_done) {
      impl.hub.cancel(ref);
      impl.reactor.run_until([&ex] { return ex.fiber_done; });
    }
    throw std::runtime_error("TestClient: " + req.method + " " + req.target + ": no reply within " +
                             std::to_string(options_.timeout.count()) + " ms");
  }
  TestResponse out;
  out.raw = std::move(ex.raw);
  out.deferred = ex.deferred;
  out.closed = ex.closed;
  out.target = req.target;
  parse_reply(out.raw, head, out);
  if (iequals(out.header("Connection"), "close")) out.closed = true;
  jar_.update(out.headers);
  return out;
}

TestResponse TestClient::fetch(const TestRequest& request) {
  const bool follow = request.follow_redirects.value_or(options_.follow_redirects);
  TestRequest next = request;
  std::vector<std::string> visited;
  for (int hops = 0;; ++hops) {
    auto r = send_once(next);
    const bool redirect =
        r.status == 301 || r.status == 302 || r.status == 303 || r.status == 307 || r.status == 308;
    if (!follow || !redirect || !r.has_header("Location")) {
      r.redirects = std::move(visited);
      return r;
    }
    if (hops >= options_.max_redirects)
      throw std::runtime_error("TestClient: more than " + std::to_string(options_.max_redirects) +
                               " redirects from " + request.target);
    visited.push_back(next.target);
    next.target = redirect_target(r.header("Location"), next.target);
    // As browsers do: 303 always, and 301/302 after a POST, become a GET.
    if (r.status == 303 || ((r.status == 301 || r.status == 302) && next.method == "POST")) {
      if (next.method != "HEAD") next.method = "GET";
      next.body.clear();
      std::erase_if(next.headers, [](const auto& h) {
        return iequals(h.first, "content-type") || iequals(h.first, "content-length");
      });
    }
  }
}

TestResponse TestClient::request(std::string_view method, std::string_view target, std::string body,
                                 const Fields& headers) {
  TestRequest r;
  r.method = std::string(method);
  r.target = std::string(target);
  r.body = std::move(body);
  r.headers = headers;
  return fetch(r);
}

TestResponse TestClient::get(std::string_view target, const Fields& headers) {
  return request("GET", target, {}, headers);
}
TestResponse TestClient::head(std::string_view target, const Fields& headers) {
  return request("HEAD", target, {}, headers);
}
TestResponse TestClient::options(std::string_view target, const Fields& headers) {
  return request("OPTIONS", target, {}, headers);
}
TestResponse TestClient::delete_(std::string_view target, const Fields& headers) {
  return request("DELETE", target, {}, headers);
}
TestResponse TestClient::post(std::string_view target, std::string body, const Fields& headers) {
  return request("POST", target, std::move(body), headers);
}
TestResponse TestClient::put(std::string_view target, std::string body, const Fields& headers) {
  return request("PUT", target, std::move(body), headers);
}
TestResponse TestClient::patch(std::string_view target, std::string body, const Fields& headers) {
  return request("PATCH", target, std::move(body), headers);
}

namespace {
Fields with_content_type(const Fields& headers, std::string type) {
  Fields out = headers;
  for (const auto& [k, v] : out)
    if (iequals(k, "content-type")) return out;
  out.emplace_back("content-type", std::move(type));
  return out;
}
}  // namespace

std::string encode_form(const Fields& form) {
  std::string out;
  for (const auto& [k, v] : form) {
    if (!out.empty()) out += '&';
    out += url_encode(k);
    out += '=';
    out += url_encode(v);
  }
  return out;
}

TestResponse TestClient::post_form(std::string_view target, const Fields& form,
                                   const Fields& headers) {
  return request("POST", target, encode_form(form),
                 with_content_type(headers, "application/x-www-form-urlencoded"));
}

TestResponse TestClient::post_json(std::string_view target, const nlohmann::json& body,
                                   const Fields& headers) {
  return request("POST", target, body.dump(), with_content_type(headers, "application/json"));
}
TestResponse TestClient::put_json(std::string_view target, const nlohmann::json& body,
                                  const Fields& headers) {
  return request("PUT", target, body.dump(), with_content_type(headers, "application/json"));
}
TestResponse TestClient::patch_json(std::string_view target, const nlohmann::json& body,
                                    const Fields& headers) {
  return request("PATCH", target, body.dump(), with_content_type(headers, "application/json"));
}

TestResponse TestClient::post_multipart(std::string_view target, const Fields& fields,
                                        const std::vector<UploadFile>& files,
                                        const Fields& headers) {
  // A boundary that appears in no part.
  std::string boundary = "brubeck-testing-boundary";
  auto appears = [&] {
    for (const auto& [k, v] : fields)
      if (v.find(boundary) != std::string::npos) return true;
    for (const auto& f : files)
      if (f.content.find(boundary) != std::string::npos) return true;
    return false;
  };
  while (appears()) boundary += "-x";
  std::string body;
  for (const auto& [name, value] : fields) {
    body += "--" + boundary + "\r\n";
    body += "Content-Disposition: form-data; name=\"" + name + "\"\r\n\r\n";
    body += value + "\r\n";
  }
  for (const auto& f : files) {
    body += "--" + boundary + "\r\n";
    body += "Content-Disposition: form-data; name=\"" + f.field + "\"; filename=\"" + f.filename +
            "\"\r\n";
    body += "Content-Type: " + f.content_type + "\r\n\r\n";
    body += f.content + "\r\n";
  }
  body += "--" + boundary + "--\r\n";
  return request("POST", target, std::move(body),
                 with_content_type(headers, "multipart/form-data; boundary=" + boundary));
}

}  // namespace brubeck::testing

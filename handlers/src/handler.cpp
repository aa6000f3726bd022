#include "brubeck/handlers/handler.hpp"

#include <charconv>
#include <chrono>

#include <nlohmann/json.hpp>

#include "brubeck/handlers/http_error.hpp"
#include "brubeck/handlers/json.hpp"
#include "brubeck/handlers/methods.hpp"
#include "brubeck/handlers/routes.hpp"

namespace brubeck {

// ---- methods ----

namespace {
constexpr std::pair<Method, std::string_view> kMethodNames[] = {
    {Method::get, "GET"},         {Method::head, "HEAD"},   {Method::post, "POST"},
    {Method::put, "PUT"},         {Method::patch, "PATCH"}, {Method::delete_, "DELETE"},
    {Method::options, "OPTIONS"},
};
}  // namespace

std::optional<Method> parse_method(std::string_view name) noexcept {
  for (auto [m, n] : kMethodNames)
    if (n == name) return m;
  return std::nullopt;
}

std::string_view method_name(Method m) noexcept {
  for (auto [mm, n] : kMethodNames)
    if (mm == m) return n;
  return "?";
}

std::string MethodSet::allow_header() const {
  std::string out;
  for (auto [m, n] : kMethodNames) {
    if (!has(m)) continue;
    if (!out.empty()) out.append(", ");
    out.append(n);
  }
  return out;
}

// ---- MessageHandler ----

MessageHandler::MessageHandler() = default;
MessageHandler::~MessageHandler() = default;

void MessageHandler::bind(const Request& request, const RouteMatch& match,
                          const HandlerSettings& settings, ReplyChannel* channel) {
  request_ = &request;
  match_ = &match;
  settings_ = &settings;
  channel_ = channel;
}

ReplyChannel& MessageHandler::channel() const {
  if (channel_ == nullptr) throw std::logic_error("no reply channel: not running on a shard");
  return *channel_;
}

void MessageHandler::send_raw(std::string_view bytes, bool last) {
  channel().send_reply(request().sender(), request().conn_id(), request().reply_slot(), bytes,
                       last);
}

DeferredReply MessageHandler::defer() {
  if (reply_taken()) throw std::logic_error("the reply was already taken over");
  auto& ch = channel();
  deferred_ = true;
  return DeferredReply(ch, std::string(request().sender()), std::string(request().conn_id()),
                       request().reply_slot(), request().should_close(),
                       request().method() == "HEAD");
}

void MessageHandler::start_stream() {
  if (reply_taken()) throw std::logic_error("the reply was already taken over");
  channel();
  response_.remove_header("Content-Length");
  response_.set_header("Transfer-Encoding", "chunked");
  if (request().should_close()) response_.set_header("Connection", "close");
  std::string head;
  response_.serialize_head(head);
  streaming_ = true;
  send_raw(head);
}

void MessageHandler::write_chunk(std::string_view data) {
  if (!streaming_ || stream_done_) throw std::logic_error("write_chunk outside a stream");
  // An empty chunk would end the stream; a HEAD reply has the head only.
  if (data.empty() || request().method() == "HEAD") return;
  char size[32];
  auto end = std::to_chars(size, size + sizeof size, data.size(), 16).ptr;
  std::string chunk;
  chunk.reserve(data.size() + 16);
  chunk.append(size, end).append("\r\n").append(data).append("\r\n");
  send_raw(chunk);
}

void MessageHandler::finish_stream() {
  if (!streaming_ || stream_done_) return;
  stream_done_ = true;
  const bool close = request().should_close();
  // A HEAD reply ended with its head (empty bytes would close it instead).
  if (request().method() != "HEAD") send_raw("0\r\n\r\n", !close);
  if (close) send_raw({}, true);
}

void MessageHandler::abort_stream() {
  if (!streaming_ || stream_done_) return;
  stream_done_ = true;
  send_raw({}, true);
}

void MessageHandler::deliver(std::span<const std::string_view> conn_ids, std::string_view bytes) {
  channel().send(request().sender(), conn_ids, bytes);
}

void MessageHandler::write_error(int status) {
  set_status(status);
  response_.body = error_response(status).body;
  response_.set_header("Content-Type", "text/plain; charset=utf-8");
}

void MessageHandler::unsupported() {
  set_status(405);
  if (match_ != nullptr && match_->route != nullptr)
    response_.set_header("Allow", match_->route->methods.allow_header());
}

std::string MessageHandler::url_for(std::string_view route_name,
                                    const std::vector<std::string>& args) const {
  if (routes_ == nullptr) throw std::logic_error("url_for: no route table bound");
  return routes_->url_for(route_name, args);
}

bool MessageHandler::accept_upload(std::size_t content_length) {
  return content_length <= settings_->max_body_bytes;
}

void MessageHandler::options() {
  set_status(204);
  if (match_ != nullptr && match_->route != nullptr)
    response_.set_header("Allow", match_->route->methods.allow_header());
}

void MessageHandler::set_status(int code, std::string_view message) {
  response_.status = code;
  response_.reason = std::string(message);
}

std::string_view MessageHandler::status_msg() const noexcept {
  return response_.reason.empty() ? reason_phrase(response_.status)
                                  : std::string_view(response_.reason);
}

namespace {
const std::vector<std::string> kNoArgs;
}

const std::vector<std::string>& MessageHandler::url_args() const noexcept {
  return match_ ? match_->args : kNoArgs;
}

std::string_view MessageHandler::get_url_arg(std::size_t index,
                                             std::string_view fallback) const noexcept {
  const auto& args = url_args();
  return index < args.size() ? std::string_view(args[index]) : fallback;
}

std::string_view MessageHandler::get_url_arg(std::string_view name,
                                             std::string_view fallback) const noexcept {
  if (match_ == nullptr) return fallback;
  for (const auto& [k, v] : match_->kwargs)
    if (k == name) return v;
  return fallback;
}

namespace {
// Replaces invalid UTF-8 by U+FFFD (nlohmann's default throws): what a
// client sent may be any bytes, and the reply must still parse.
template <class Json>
std::string dump_json(const Json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
}  // namespace

nlohmann::ordered_json& MessageHandler::payload() {
  if (!payload_)
    payload_ = std::make_unique<nlohmann::ordered_json>(nlohmann::ordered_json::object());
  return *payload_;
}

void MessageHandler::add_raw_to_payload(std::string_view key, std::string_view json) {
  auto value = nlohmann::ordered_json::parse(json, nullptr, false);
  if (value.is_discarded()) throw std::invalid_argument("add_raw_to_payload: not JSON text");
  payload()[std::string(key)] = std::move(value);
}

void MessageHandler::add_to_payload(std::string_view key, std::string_view value) {
  payload()[std::string(key)] = value;
}

void MessageHandler::add_to_payload(std::string_view key, std::int64_t value) {
  payload()[std::string(key)] = value;
}

void MessageHandler::add_to_payload(std::string_view key, double value) {
  payload()[std::string(key)] = value;
}

void MessageHandler::add_to_payload(std::string_view key, bool value) {
  payload()[std::string(key)] = value;
}

std::string MessageHandler::render_payload() const {
  std::string out = "{";
  auto field = [&](std::string_view k, std::string_view json) {
    if (out.size() > 1) out.push_back(',');
    append_json_string(out, k);
    out.push_back(':');
    out.append(json);
  };
  if (!hide_status_) {
    std::string code;
    append_json_number(code, static_cast<std::int64_t>(response_.status));
    field("status_code", code);
    field("status_msg", json_string(status_msg()));
  }
  bool has_timestamp = false;
  if (payload_) {
    for (const auto& [k, v] : payload_->items()) {
      if (!hide_status_ && (k == "status_code" || k == "status_msg")) continue;
      has_timestamp |= k == "timestamp";
      field(k, dump_json(v));
    }
  }
  if (!has_timestamp) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    std::string ts;
    append_json_number(ts, static_cast<std::int64_t>(ms));
    field("timestamp", ts);
  }
  out.push_back('}');
  return out;
}

Response MessageHandler::render() {
  response_.body = render_payload();
  response_.set_header("Content-Type", "application/json");
  return std::move(response_);
}

// ---- WebMessageHandler ----

namespace {
std::string strip_ws(std::string s, bool strip) {
  if (!strip) return s;
  auto b = s.find_first_not_of(" \t\r\n\v\f");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n\v\f");
  return s.substr(b, e - b + 1);
}

// Tornado's and Brubeck's rule: C0 controls other than whitespace have no
// place in a form value, and are a classic injection vector.
bool has_control_chars(std::string_view v) noexcept {
  for (unsigned char c : v)
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\v' && c != '\f') || c == 0x7f)
      return true;
  return false;
}

int multipart_status(MultipartError e) noexcept {
  switch (e) {
    case MultipartError::ok:
      return 200;
    case MultipartError::not_multipart:
      return 415;
    case MultipartError::too_many_parts:
    case MultipartError::part_too_large:
    case MultipartError::headers_too_large:
      return 413;
    default:
      return 400;
  }
}
}  // namespace

void WebMessageHandler::parse_body_arguments() const {
  if (body_parsed_) return;
  body_parsed_ = true;
  const auto& req = request();
  // Most requests carry query arguments only: read them where the Request
  // keeps them, without a copy.
  args_ = &req.query_arguments();
  auto method = req.method();
  if (method == "POST" || method == "PUT" || method == "PATCH") {
    auto body = req.body();
    if (body.size() > settings().max_body_bytes)
      throw HttpError(413, "request body over the configured limit");
    auto type = req.content_type();
    if (type == "application/x-www-form-urlencoded") {
      arguments_ = req.query_arguments();
      for (auto& kv : parse_query_string(body)) arguments_.push_back(std::move(kv));
      args_ = &arguments_;
    } else if (type == "multipart/form-data") {
      std::vector<FormPart> parts;
      auto err =
          parse_multipart(req.header_or("content-type", ""), body, parts, settings().multipart);
      if (err != MultipartError::ok)
        throw HttpError(multipart_status(err), "multipart body: " + std::string(to_string(err)));
      arguments_ = req.query_arguments();
      for (auto& part : parts) {
        if (part.is_file())
          files_.push_back(std::move(part));
        else if (!part.body.empty())
          arguments_.emplace_back(std::move(part.name), std::string(part.body));
      }
      args_ = &arguments_;
    }
  }
  for (const auto& [k, v] : *args_)
    if (has_control_chars(v) || has_control_chars(k))
      throw HttpError(400, "control characters in argument '" + k + "'");
  // File names are refused by a like rule, and so are "." and "..", which
  // name no file and walk a path when joined to a folder. (The multipart
  // reader already cut everything up to the last slash or backslash.)
  // Stricter than for values: a newline or tab in a file name only ever
  // serves to break the headers or logs it is written into.
  auto strict_control = [](std::string_view v) {
    for (unsigned char c : v)
      if (c < 0x20 || c == 0x7f) return true;
    return false;
  };
  for (const auto& file : files_) {
    const auto& name = *file.filename;
    if (has_control_chars(file.name) || strict_control(name) || name == "." || name == "..")
      throw HttpError(400, "bad file name in part '" + file.name + "'");
  }
}

const std::vector<std::pair<std::string, std::string>>& WebMessageHandler::arguments() const {
  parse_body_arguments();
  return *args_;
}

const std::vector<FormPart>& WebMessageHandler::files() const {
  parse_body_arguments();
  return files_;
}

std::string WebMessageHandler::get_argument(std::string_view name, std::string_view fallback,
                                            bool strip) const {
  for (const auto& [k, v] : arguments())
    if (k == name) return strip_ws(v, strip);
  return std::string(fallback);
}

std::vector<std::string> WebMessageHandler::get_arguments(std::string_view name, bool strip) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : arguments())
    if (k == name) out.push_back(strip_ws(v, strip));
  return out;
}

std::optional<std::string> WebMessageHandler::get_cookie(std::string_view name) const {
  for (auto header : request().header_values("cookie"))
    for (auto& [k, v] : parse_cookie_header(header))
      if (k == name) return std::move(v);
  return std::nullopt;
}

void WebMessageHandler::set_cookie(std::string_view name, std::string_view value,
                                   const CookieOptions& options) {
  response_.add_header("Set-Cookie", format_set_cookie(name, value, options));
}

void WebMessageHandler::delete_cookie(std::string_view name, std::string_view path,
                                      std::string_view domain) {
  response_.add_header("Set-Cookie", format_delete_cookie(name, path, domain));
}

void WebMessageHandler::delete_cookies() {
  for (auto header : request().header_values("cookie"))
    for (const auto& kv : parse_cookie_header(header)) delete_cookie(kv.first);
}

namespace {
const CookieSigner& signer_of(const HandlerSettings& s) {
  if (!s.cookie_signer)
    throw std::logic_error("secure cookies need a cookie_secret in the configuration");
  return *s.cookie_signer;
}
}  // namespace

void WebMessageHandler::set_secure_cookie(std::string_view name, std::string_view value,
                                          const CookieOptions& options) {
  set_cookie(name, signer_of(settings()).sign(name, value), options);
}

std::optional<std::string> WebMessageHandler::get_secure_cookie(std::string_view name) const {
  return get_secure_cookie(name, settings().secure_cookie_max_age);
}

std::optional<std::string> WebMessageHandler::get_secure_cookie(
    std::string_view name, std::chrono::seconds max_age) const {
  const auto& signer = signer_of(settings());
  auto raw = get_cookie(name);
  if (!raw) return std::nullopt;
  return signer.verify(name, *raw, max_age);
}

void WebMessageHandler::redirect(std::string_view url, int status) {
  if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308)
    throw std::invalid_argument("redirect status must be 301, 302, 303, 307 or 308");
  set_status(status);
  response_.set_header("Location", url);
}

void WebMessageHandler::redirect_local(std::string_view path, int status) {
  if (!is_local_path(path)) throw HttpError(400, "redirect target must be a local path");
  redirect(path, status);
}

bool is_local_path(std::string_view target) noexcept {
  if (target.empty() || target[0] != '/' || (target.size() > 1 && target[1] == '/')) return false;
  for (unsigned char c : target)
    if (c <= 0x20 || c == 0x7f || c == '\\') return false;
  return true;
}

void WebMessageHandler::set_json(const nlohmann::json& value) {
  response_.body = dump_json(value);
  response_.set_header("Content-Type", "application/json");
}

void WebMessageHandler::set_json(const nlohmann::ordered_json& value) {
  response_.body = dump_json(value);
  response_.set_header("Content-Type", "application/json");
}

Response WebMessageHandler::render() {
  // An error status with nothing to say still gets its error page.
  if (response_.body.empty() && response_.status >= 400) write_error(response_.status);
  bool has_type = false;
  for (const auto& h : response_.headers) has_type |= iequals(h.first, "content-type");
  if (!has_type && !response_.body.empty())
    response_.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
  return std::move(response_);
}

void WebMessageHandler::write_error(int status) {
  if (settings().error_page) {
    set_status(status);
    response_.body.clear();
    settings().error_page(*this, status);
    return;
  }
  MessageHandler::write_error(status);
}

Response JSONMessageHandler::render() {
  response_.body = render_payload();
  response_.set_header("Content-Type", "application/json");
  return std::move(response_);
}

}  // namespace brubeck

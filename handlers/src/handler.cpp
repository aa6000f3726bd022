#include "brubeck/handlers/handler.hpp"

#include <chrono>

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

void MessageHandler::bind(const Request& request, const RouteMatch& match) {
  request_ = &request;
  match_ = &match;
}

void MessageHandler::unsupported() {
  set_status(405);
  if (match_ != nullptr && match_->route != nullptr)
    response_.set_header("Allow", match_->route->methods.allow_header());
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

void MessageHandler::add_raw_to_payload(std::string_view key, std::string json) {
  for (auto& [k, v] : payload_) {
    if (k == key) {
      v = std::move(json);
      return;
    }
  }
  payload_.emplace_back(std::string(key), std::move(json));
}

void MessageHandler::add_to_payload(std::string_view key, std::string_view value) {
  add_raw_to_payload(key, json_string(value));
}

void MessageHandler::add_to_payload(std::string_view key, std::int64_t value) {
  std::string s;
  append_json_number(s, value);
  add_raw_to_payload(key, std::move(s));
}

void MessageHandler::add_to_payload(std::string_view key, double value) {
  std::string s;
  append_json_number(s, value);
  add_raw_to_payload(key, std::move(s));
}

void MessageHandler::add_to_payload(std::string_view key, bool value) {
  add_raw_to_payload(key, value ? "true" : "false");
}

std::string MessageHandler::render_payload() const {
  std::string out = "{";
  auto field = [&](std::string_view k, std::string_view json) {
    if (out.size() > 1) out.push_back(',');
    append_json_string(out, k);
    out.push_back(':');
    out.append(json);
  };
  auto has = [&](std::string_view k) {
    for (const auto& p : payload_)
      if (p.first == k) return true;
    return false;
  };
  if (!hide_status_) {
    std::string code;
    append_json_number(code, static_cast<std::int64_t>(response_.status));
    field("status_code", code);
    field("status_msg", json_string(status_msg()));
  }
  for (const auto& [k, v] : payload_) {
    if (!hide_status_ && (k == "status_code" || k == "status_msg")) continue;
    field(k, v);
  }
  if (!has("timestamp")) {
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
}  // namespace

std::string WebMessageHandler::get_argument(std::string_view name, std::string_view fallback,
                                            bool strip) const {
  for (const auto& [k, v] : request().arguments())
    if (k == name) return strip_ws(v, strip);
  return std::string(fallback);
}

std::vector<std::string> WebMessageHandler::get_arguments(std::string_view name, bool strip) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : request().arguments())
    if (k == name) out.push_back(strip_ws(v, strip));
  return out;
}

Response WebMessageHandler::render() {
  // An error status with nothing to say still gets a short readable body.
  if (response_.body.empty() && response_.status >= 400) {
    auto fallback = error_response(response_.status);
    response_.body = std::move(fallback.body);
    response_.set_header("Content-Type", "text/plain; charset=utf-8");
  }
  bool has_type = false;
  for (const auto& h : response_.headers) has_type |= iequals(h.first, "content-type");
  if (!has_type && !response_.body.empty())
    response_.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
  return std::move(response_);
}

Response JSONMessageHandler::render() {
  response_.body = render_payload();
  response_.set_header("Content-Type", "application/json");
  return std::move(response_);
}

}  // namespace brubeck

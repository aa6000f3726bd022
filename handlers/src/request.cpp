#include "brubeck/handlers/request.hpp"

#include <simdjson.h>

#include <algorithm>

#include "brubeck/handlers/http_error.hpp"

namespace brubeck {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

Request::Request(Frame frame, std::shared_ptr<const void> storage, std::size_t shard_index,
                 std::uint64_t reply_slot)
    : frame_(std::move(frame)),
      storage_(std::move(storage)),
      shard_index_(shard_index),
      reply_slot_(reply_slot),
      path_(origin_path(frame_.path)) {
  // Mongrel2 puts its own keys in upper case; a client cannot spoof them since
  // client header names arrive lower-cased.
  for (const auto& h : frame_.headers) {
    if (h.name == "METHOD")
      method_ = h.value;
    else if (h.name == "VERSION")
      version_ = h.value;
    else if (h.name == "URI")
      uri_ = h.value;
    else if (h.name == "QUERY")
      query_ = h.value;
  }
}

std::optional<std::string_view> Request::header(std::string_view name) const noexcept {
  for (const auto& h : frame_.headers)
    if (iequals(h.name, name)) return std::string_view(h.value);
  return std::nullopt;
}

std::vector<std::string_view> Request::header_values(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& h : frame_.headers)
    if (iequals(h.name, name)) out.emplace_back(h.value);
  return out;
}

const std::vector<std::pair<std::string, std::string>>& Request::query_arguments() const {
  if (!arguments_) arguments_ = parse_query_string(query_);
  return *arguments_;
}

namespace {
std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

std::string_view Request::remote_addr() const noexcept {
  if (auto addr = header("REMOTE_ADDR"); addr && !addr->empty()) return *addr;
  auto xff = header_or("x-forwarded-for", "");
  return trim(xff.substr(0, xff.find(',')));
}

std::string_view Request::scheme() const noexcept {
  auto s = header_or("URL_SCHEME", "");
  return s.empty() ? std::string_view("http") : s;
}

std::string Request::full_url() const {
  std::string url(scheme());
  url.append("://").append(host()).append(uri().empty() ? path() : uri());
  return url;
}

std::string Request::content_type() const {
  auto ct = header_or("content-type", "");
  auto v = trim(ct.substr(0, ct.find(';')));
  std::string out(v);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return out;
}

struct Request::JsonBody {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
};

const simdjson::dom::element& Request::json() const {
  if (!json_) {
    auto parsed = std::make_shared<JsonBody>();
    // Copies into simdjson's padded buffer: the body view has no padding.
    if (parsed->parser.parse(frame_.body.data(), frame_.body.size()).get(parsed->root))
      throw HttpError(400, "malformed JSON body");
    json_ = std::move(parsed);
  }
  return json_->root;
}

bool Request::should_close() const noexcept { return wants_close(frame_); }

std::string_view origin_path(std::string_view target) noexcept {
  // Mongrel2 1.12 turns "http://host:port/p" into "//host:port/p".
  std::size_t authority = 0;
  if (target.starts_with("//")) {
    authority = 2;
  } else {
    if (target.empty() || target.front() == '/') return target;
    // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986)
    auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    if (!alpha(target[0])) return target;
    std::size_t i = 0;
    while (i < target.size() && (alpha(target[i]) || (target[i] >= '0' && target[i] <= '9') ||
                                 target[i] == '+' || target[i] == '-' || target[i] == '.'))
      ++i;
    if (target.substr(i, 3) != "://") return target;
    authority = i + 3;
  }
  const std::size_t slash = target.find_first_of("/?#", authority);
  if (slash == std::string_view::npos || target[slash] != '/') return "/";
  return target.substr(slash);
}

bool wants_close(const Frame& frame) noexcept {
  std::optional<std::string_view> connection, version;
  for (const auto& h : frame.headers) {
    if (!connection && iequals(h.name, "connection")) connection = h.value;
    if (!version && h.name == "VERSION") version = h.value;
  }
  if (connection && iequals(*connection, "close")) return true;
  if (version == "HTTP/1.0") return !(connection && iequals(*connection, "keep-alive"));
  return false;
}

namespace {
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string url_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto b = static_cast<unsigned char>(c);
    if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[b >> 4];
      out += hex[b & 0xF];
    }
  }
  return out;
}

std::string url_decode(std::string_view s) {
  // Most names and values need no decoding: one copy, no per-byte loop.
  // (A plain loop: find_first_of with a set calls memchr once per byte.)
  bool plain = true;
  for (char c : s) plain &= c != '%' && c != '+';
  if (plain) return std::string(s);
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_query_string(std::string_view qs) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(static_cast<std::size_t>(std::count(qs.begin(), qs.end(), '&')) + 1);
  while (!qs.empty()) {
    std::size_t amp = 0;
    while (amp < qs.size() && qs[amp] != '&' && qs[amp] != ';') ++amp;
    if (amp == qs.size()) amp = std::string_view::npos;
    auto part = qs.substr(0, amp);
    qs = amp == std::string_view::npos ? std::string_view{} : qs.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    if (eq == std::string_view::npos) continue;  // no value: dropped, as Brubeck does
    auto value = url_decode(part.substr(eq + 1));
    if (value.empty()) continue;
    out.emplace_back(url_decode(part.substr(0, eq)), std::move(value));
  }
  return out;
}

}  // namespace brubeck

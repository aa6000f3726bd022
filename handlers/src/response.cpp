#include "brubeck/handlers/response.hpp"

#include <fmt/format.h>

#include <charconv>
#include <stdexcept>

#include "brubeck/handlers/request.hpp"

namespace brubeck {

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 418:
      return "I'm a teapot";
    case 422:
      return "Unprocessable Entity";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

namespace {
bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c <= 32 || c >= 127) return false;
    if (std::string_view("()<>@,;:\\\"/[]?={}").find(static_cast<char>(c)) !=
        std::string_view::npos)
      return false;
  }
  return true;
}
}  // namespace

void Response::add_header(std::string_view name, std::string_view value) {
  if (!is_token(name)) throw std::invalid_argument(fmt::format("invalid header name '{}'", name));
  if (value.find_first_of("\r\n") != std::string_view::npos || value.find('\0') != value.npos)
    throw std::invalid_argument(fmt::format("header '{}' value contains CR, LF or NUL", name));
  headers.emplace_back(name, value);
}

void Response::set_header(std::string_view name, std::string_view value) {
  remove_header(name);
  add_header(name, value);
}

void Response::remove_header(std::string_view name) {
  std::erase_if(headers, [&](const auto& h) { return iequals(h.first, name); });
}

void Response::serialize(std::string& out, bool include_body) const {
  auto phrase = reason.empty() ? reason_phrase(status) : std::string_view(reason);
  std::size_t size = 64 + phrase.size() + (include_body ? body.size() : 0);
  for (const auto& [k, v] : headers) size += k.size() + v.size() + 4;
  out.reserve(out.size() + size);
  // Plain appends: this runs once per request and fmt's parsing showed up.
  char digits[16];
  auto code_end = std::to_chars(digits, digits + sizeof digits, status).ptr;
  out.append("HTTP/1.1 ").append(digits, code_end).append(" ").append(phrase).append("\r\n");
  for (const auto& [k, v] : headers) {
    if (iequals(k, "content-length")) continue;
    out.append(k).append(": ").append(v).append("\r\n");
  }
  // 204 and 304 carry no body by definition, whatever the handler set.
  if (status == 204 || status == 304) {
    out.append("\r\n");
    return;
  }
  auto len_end = std::to_chars(digits, digits + sizeof digits, body.size()).ptr;
  out.append("Content-Length: ").append(digits, len_end).append("\r\n\r\n");
  if (include_body) out.append(body);
}

void Response::serialize_head(std::string& out) const {
  auto phrase = reason.empty() ? reason_phrase(status) : std::string_view(reason);
  char digits[16];
  auto code_end = std::to_chars(digits, digits + sizeof digits, status).ptr;
  out.append("HTTP/1.1 ").append(digits, code_end).append(" ").append(phrase).append("\r\n");
  for (const auto& [k, v] : headers) out.append(k).append(": ").append(v).append("\r\n");
  out.append("\r\n");
}

Response error_response(int status, std::string_view detail) {
  Response r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  r.body = fmt::format("{} {}", status, reason_phrase(status));
  if (!detail.empty()) fmt::format_to(std::back_inserter(r.body), ": {}", detail);
  r.body.push_back('\n');
  return r;
}

}  // namespace brubeck

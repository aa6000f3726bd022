// An HTTP reply under construction: status, headers and body, and its exact
// wire form. Content-Length is always computed here, never trusted from a
// handler, so it cannot disagree with the body.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace brubeck {

// The standard reason phrase ("Not Found"), or "Unknown" for other codes.
std::string_view reason_phrase(int status) noexcept;

struct Response {
  int status = 200;
  std::string reason;  // empty: the standard phrase
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // Throws std::invalid_argument for CR or LF in the name or value (header
  // injection) and for an empty or non-token name.
  void add_header(std::string_view name, std::string_view value);
  // Replaces every header of that name (case-insensitive) with one value.
  void set_header(std::string_view name, std::string_view value);
  void remove_header(std::string_view name);

  // Appends "HTTP/1.1 ..." to out. Without the body (HEAD), Content-Length
  // still gives the size the body would have.
  void serialize(std::string& out, bool include_body = true) const;
  // Status line and headers only, ending in the blank line, with no
  // Content-Length added (for streamed, chunked replies).
  void serialize_head(std::string& out) const;
};

// A short plain-text reply such as "404 Not Found".
Response error_response(int status, std::string_view detail = {});

}  // namespace brubeck

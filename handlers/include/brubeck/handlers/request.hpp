// One request as a handler sees it: Mongrel2's decoded frame plus the raw
// bytes it points into, with case-insensitive header lookup and decoded
// query arguments. Built by the shard, read by the handler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "brubeck/pipeline/codec.hpp"

namespace simdjson::dom {
class element;
}

namespace brubeck {

class Request {
 public:
  // `storage` keeps alive the bytes that `frame`'s views point into.
  // `reply_slot` is the request's place among its connection's replies
  // (given by the shard; 0: not ordered, as in unit tests).
  Request(Frame frame, std::shared_ptr<const void> storage, std::size_t shard_index = 0,
          std::uint64_t reply_slot = 0);

  std::string_view sender() const noexcept { return frame_.sender; }
  std::string_view conn_id() const noexcept { return frame_.conn_id; }
  // The request's path. An absolute-form target (`GET http://host/p HTTP/1.1`,
  // which proxies send and RFC 9112 requires servers to accept) gives its
  // path, "/p", so it routes like the origin form.
  std::string_view path() const noexcept { return path_; }
  std::string_view body() const noexcept { return frame_.body; }
  FrameKind kind() const noexcept { return frame_.kind; }
  bool is_disconnect() const noexcept { return frame_.kind == FrameKind::disconnect; }
  // METHOD, VERSION, URI and QUERY as Mongrel2 sent them ("" when absent).
  std::string_view method() const noexcept { return method_; }
  std::string_view version() const noexcept { return version_; }
  std::string_view uri() const noexcept { return uri_; }
  std::string_view query_string() const noexcept { return query_; }
  std::string_view upload_start() const noexcept { return frame_.upload_start; }
  std::string_view upload_done() const noexcept { return frame_.upload_done; }

  const std::vector<Header>& headers() const noexcept { return frame_.headers; }
  // First value of the header, compared without regard to case.
  std::optional<std::string_view> header(std::string_view name) const noexcept;
  std::string_view header_or(std::string_view name, std::string_view fallback) const noexcept {
    return header(name).value_or(fallback);
  }
  // Every value of a repeated header, in order.
  std::vector<std::string_view> header_values(std::string_view name) const;

  // Decoded query-string arguments in order (a name may repeat); empty
  // values dropped. WebMessageHandler::get_argument also merges form bodies.
  const std::vector<std::pair<std::string, std::string>>& query_arguments() const;

  // The client's address: REMOTE_ADDR, else the first x-forwarded-for entry.
  std::string_view remote_addr() const noexcept;
  // "http" or "https" (Mongrel2's URL_SCHEME), the Host header, and
  // scheme://host/uri.
  std::string_view scheme() const noexcept;
  std::string_view host() const noexcept { return header_or("host", ""); }
  std::string full_url() const;
  // The media type of the body, lower case, without parameters ("" if none).
  std::string content_type() const;

  // The body parsed as JSON (simdjson DOM; include <simdjson.h> to use it).
  // Parsed once; a malformed body throws HttpError(400).
  const simdjson::dom::element& json() const;

  // HTTP/1.0 without keep-alive, or "Connection: close": close after replying.
  bool should_close() const noexcept;

  // Index of the shard serving this request.
  std::size_t shard_index() const noexcept { return shard_index_; }
  // Where this request's reply goes among its connection's replies (HTTP/1.1
  // pipelining answers in request order): every byte of it is sent with it.
  std::uint64_t reply_slot() const noexcept { return reply_slot_; }

 private:
  Frame frame_;
  std::shared_ptr<const void> storage_;
  std::size_t shard_index_;
  std::uint64_t reply_slot_;
  std::string_view path_, method_, version_, uri_, query_;
  mutable std::optional<std::vector<std::pair<std::string, std::string>>> arguments_;
  struct JsonBody;
  mutable std::shared_ptr<JsonBody> json_;
};

// The path of a request target: `target` itself unless it is in absolute
// form (scheme "://" authority path, or "//" authority path, which is what
// Mongrel2 1.12 makes of it), then its path ("/" when empty). An origin-form
// path cannot start with "//" in practice: browsers and curl never send one.
std::string_view origin_path(std::string_view target) noexcept;

// Percent- and plus-decodes application/x-www-form-urlencoded text into
// (name, value) pairs, dropping pairs whose value is empty.
std::vector<std::pair<std::string, std::string>> parse_query_string(std::string_view qs);

// Percent-decoding with '+' as space; invalid escapes are kept literally.
std::string url_decode(std::string_view s);
// Percent-encodes every byte but RFC 3986's unreserved ones (letters,
// digits, "-._~"): safe as a path segment or a query value.
std::string url_encode(std::string_view s);

bool iequals(std::string_view a, std::string_view b) noexcept;

// HTTP/1.0 without keep-alive, or "Connection: close": what
// Request::should_close() says, for a frame no Request was built for (a
// request refused before it reached a handler).
bool wants_close(const Frame& frame) noexcept;

}  // namespace brubeck

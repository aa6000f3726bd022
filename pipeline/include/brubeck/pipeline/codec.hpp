// Mongrel2's wire format, both ways: request frames in (JSON or tnetstring
// headers, disconnect notices, JSON/XML socket messages, upload markers) and
// reply frames out (one or many connection ids, close frames).
//
// Framing is strict: every length, terminator and id is checked and a bad
// frame yields a DecodeError, never undefined behaviour. Header text is not:
// values are bytes, as Mongrel2 passes them (raw control bytes and bytes
// that are not UTF-8 included; see detail/flat_json.hpp). Views in a decoded
// Frame point into the caller's bytes, which must outlive it. Header names and
// values are views too: into those bytes, or, for the rare JSON string with
// an escape, into a buffer the Frame owns. Decoding copies no header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace brubeck {

enum class DecodeError : std::uint8_t {
  ok = 0,
  truncated,             // input ends before a required part
  bad_sender,            // empty sender, or not printable ASCII without spaces
  bad_conn_id,           // not 1..20 decimal digits
  bad_path,              // empty path
  bad_netstring_length,  // length not digits, too long, or past the end
  missing_terminator,    // netstring not closed by ',' (or '}' for tnetstring dicts)
  bad_headers,           // headers are neither a JSON object nor a tnetstring dict of strings
  trailing_bytes,        // bytes after the body netstring
};

// A short, stable description for logs ("bad conn id", ...).
std::string_view to_string(DecodeError e) noexcept;

enum class FrameKind : std::uint8_t {
  http,        // an ordinary HTTP request
  json,        // METHOD "JSON" socket message (not a disconnect)
  xml,         // METHOD "XML" socket message
  disconnect,  // METHOD "JSON" with body {"type":"disconnect"}: never answered
};

struct Header {
  std::string_view name;  // as sent: browser headers lower case, Mongrel2's upper case
  std::string_view value;
};

// One decoded request frame.
struct Frame {
  std::string_view sender;
  std::string_view conn_id;
  std::string_view path;
  std::string_view body;
  FrameKind kind = FrameKind::http;
  // In order of appearance; a JSON array value becomes one entry per element.
  std::vector<Header> headers;
  // Values of x-mongrel2-upload-start / -done, empty when absent.
  std::string_view upload_start;
  std::string_view upload_done;
  // Unescaped header text, when some JSON string held an escape; shared, so
  // a copy of the Frame stays valid.
  std::shared_ptr<char[]> unescaped;

  // First header named exactly `name` (case-sensitive, as Mongrel2 sends
  // them), or nullptr.
  const Header* find(std::string_view name) const noexcept;
};

// What the router reads of a frame: "SENDER SP CONN_ID SP", nothing more.
struct RouteKey {
  std::string_view sender;
  std::string_view conn_id;
};

// Scans only the sender and conn id; never looks at the headers.
// Returns nullopt when those two are malformed.
std::optional<RouteKey> peek_route_key(std::string_view frame) noexcept;

// What a shard does with a frame it was handed: one decision, so that a
// frame whose sender and connection id can be read always gets an answer
// (a reply or a close), never silence and a client left waiting.
enum class FrameAction : std::uint8_t {
  serve,       // an HTTP request with METHOD and PATH: a handler answers
  disconnect,  // Mongrel2's disconnect notice: cancel the connection's work, send nothing
  reject,      // undecodable, or METHOD or PATH missing: 400, then close
  close,       // a JSON/XML socket message, which nothing here handles: close
  drop,        // no readable sender and conn id: nobody to answer
};

// `e` and `frame` are what FrameDecoder::decode gave for `bytes`.
FrameAction frame_action(std::string_view bytes, DecodeError e, const Frame& frame) noexcept;

// Decodes whole frames. Holds a reusable simdjson parser and padded scratch
// buffer, so make one per shard and reuse it; not thread-safe.
class FrameDecoder {
 public:
  FrameDecoder();
  ~FrameDecoder();
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // On success fills `out` (clearing what was there) and returns ok.
  DecodeError decode(std::string_view bytes, Frame& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Largest number of connection ids in one reply frame (Mongrel2 accepts 128).
inline constexpr std::size_t kMaxIdsPerFrame = 100;

// Appends "SENDER SP LEN:ID ID..., SP" to out; ids.size() must be 1..100.
void append_reply_prefix(std::string& out, std::string_view sender,
                         std::span<const std::string_view> conn_ids);

// The whole reply frame for one connection. An empty body closes it.
std::string encode_reply(std::string_view sender, std::string_view conn_id, std::string_view body);

// The frames that deliver `body` to every id, at most kMaxIdsPerFrame each.
std::vector<std::string> encode_broadcast(std::string_view sender,
                                          std::span<const std::string_view> conn_ids,
                                          std::string_view body);

// The frame that closes the connection (an empty body).
inline std::string encode_close(std::string_view sender, std::string_view conn_id) {
  return encode_reply(sender, conn_id, {});
}

}  // namespace brubeck

#include "brubeck/pipeline/codec.hpp"

#include "brubeck/pipeline/detail/flat_json.hpp"

#include <simdjson.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace brubeck {

namespace {

// Mongrel2 senders are UUIDs; the cap keeps a garbage frame from making the
// scan walk the whole buffer.
constexpr std::size_t kMaxSender = 128;
constexpr std::size_t kMaxConnIdDigits = 20;
// 10 digits is ~9.3 GiB, beyond any frame Mongrel2 sends, and keeps the
// value well inside 64 bits.
constexpr std::size_t kMaxLengthDigits = 10;

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_sender_char(char c) noexcept { return c > ' ' && c <= '~'; }

// Finds c in s[from, from + limit); npos when absent. Guards the empty case
// because memchr with a null pointer is undefined even for length 0.
std::size_t find_char(std::string_view s, std::size_t from, std::size_t limit, char c) noexcept {
  if (from >= s.size()) return std::string_view::npos;
  const std::size_t n = std::min(limit, s.size() - from);
  const void* hit = std::memchr(s.data() + from, c, n);
  if (hit == nullptr) return std::string_view::npos;
  return static_cast<std::size_t>(static_cast<const char*>(hit) - s.data());
}

// Length of the leading run of sender characters in p[0, n). Eight bytes at a
// time, since every frame pays for this scan (the router peeks each one): a
// word is skipped whole when none of its bytes is below '!' (space, controls)
// or above '~' (DEL, non-ASCII); otherwise the byte loop finds which one.
std::size_t sender_run(const char* p, std::size_t n) noexcept {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
  std::size_t i = 0;
  for (; n - i >= 8; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, sizeof w);
    const std::uint64_t below = (w - kOnes * '!') & ~w & kHighs;
    const std::uint64_t above = ((w + kOnes) | w) & kHighs;
    if ((below | above) != 0) break;
  }
  while (i < n && is_sender_char(p[i])) ++i;
  return i;
}

// "SENDER SP CONN_ID SP"; on success `pos` is just past the second space.
DecodeError scan_route_key(std::string_view in, RouteKey& key, std::size_t& pos) noexcept {
  const std::size_t limit = std::min(in.size(), kMaxSender + 1);
  const std::size_t sp1 = sender_run(in.data(), limit);
  if (sp1 == limit) {
    return in.size() > kMaxSender ? DecodeError::bad_sender : DecodeError::truncated;
  }
  if (sp1 == 0 || in[sp1] != ' ') return DecodeError::bad_sender;

  const std::size_t id_begin = sp1 + 1;
  const std::size_t id_limit = std::min(in.size(), id_begin + kMaxConnIdDigits + 1);
  std::size_t sp2 = id_begin;
  while (sp2 < id_limit && is_digit(in[sp2])) ++sp2;
  if (sp2 == id_limit) {
    return id_limit == in.size() && sp2 - id_begin <= kMaxConnIdDigits ? DecodeError::truncated
                                                                       : DecodeError::bad_conn_id;
  }
  if (sp2 == id_begin || in[sp2] != ' ') return DecodeError::bad_conn_id;

  key.sender = in.substr(0, sp1);
  key.conn_id = in.substr(id_begin, sp2 - id_begin);
  pos = sp2 + 1;
  return DecodeError::ok;
}

struct Netstring {
  std::string_view payload;
  char tag = '\0';
};

// Reads "LEN:PAYLOAD TAG" at in[pos]; on success `pos` is just past TAG. The
// tag is returned, not checked: the caller knows which ones it accepts.
DecodeError read_netstring(std::string_view in, std::size_t& pos, Netstring& out) noexcept {
  std::uint64_t len = 0;
  std::size_t i = pos;
  for (;; ++i) {
    if (i == in.size()) return DecodeError::truncated;
    const char c = in[i];
    if (c == ':') break;
    if (!is_digit(c) || i - pos == kMaxLengthDigits) return DecodeError::bad_netstring_length;
    len = len * 10 + static_cast<std::uint64_t>(c - '0');
  }
  const std::size_t digits = i - pos;
  // Leading zeros are forbidden by the netstring spec and never sent by Mongrel2.
  if (digits == 0 || (digits > 1 && in[pos] == '0')) return DecodeError::bad_netstring_length;
  const std::size_t begin = i + 1;
  const std::size_t remaining = in.size() - begin;
  if (len > remaining) return DecodeError::bad_netstring_length;
  if (len == remaining) return DecodeError::truncated;  // the tag is all that is missing
  const auto n = static_cast<std::size_t>(len);
  out.payload = in.substr(begin, n);
  out.tag = in[begin + n];
  pos = begin + n + 1;
  return DecodeError::ok;
}

// A tnetstring dict body: alternating string keys and values, a value being a
// string or a list of strings. Any framing error inside is a headers error:
// the outer netstring was well formed.
DecodeError parse_tnetstring_headers(std::string_view dict, std::vector<Header>& out) {
  std::size_t pos = 0;
  while (pos < dict.size()) {
    Netstring key;
    Netstring value;
    if (read_netstring(dict, pos, key) != DecodeError::ok || key.tag != ',') {
      return DecodeError::bad_headers;
    }
    if (read_netstring(dict, pos, value) != DecodeError::ok) return DecodeError::bad_headers;
    if (value.tag == ',') {
      out.push_back(Header{key.payload, value.payload});
    } else if (value.tag == ']') {
      std::size_t item_pos = 0;
      while (item_pos < value.payload.size()) {
        Netstring item;
        if (read_netstring(value.payload, item_pos, item) != DecodeError::ok || item.tag != ',') {
          return DecodeError::bad_headers;
        }
        out.push_back(Header{key.payload, item.payload});
      }
    } else {
      return DecodeError::bad_headers;
    }
  }
  return DecodeError::ok;
}

void append_decimal(std::string& out, std::size_t n) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, res.ptr);
}

std::size_t decimal_digits(std::size_t n) noexcept {
  std::size_t d = 1;
  while (n >= 10) {
    n /= 10;
    ++d;
  }
  return d;
}

// Byte length of "ID ID ID": what the reply's netstring length counts.
std::size_t id_list_length(std::span<const std::string_view> ids) noexcept {
  std::size_t n = ids.size() - 1;  // separators; callers guarantee ids is non-empty
  for (const auto id : ids) n += id.size();
  return n;
}

std::size_t prefix_length(std::string_view sender, std::size_t ids_len) noexcept {
  return sender.size() + 1 + decimal_digits(ids_len) + 1 + ids_len + 2;
}

// Separate from append_reply_prefix so the encoders can size their buffer for
// prefix and body together and allocate only once.
void append_prefix_unchecked(std::string& out, std::string_view sender,
                             std::span<const std::string_view> ids, std::size_t ids_len) {
  out.append(sender);
  out.push_back(' ');
  append_decimal(out, ids_len);
  out.push_back(':');
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i != 0) out.push_back(' ');
    out.append(ids[i]);
  }
  out.append(", ");
}

void check_id_count(std::size_t n) {
  if (n == 0 || n > kMaxIdsPerFrame) {
    throw std::invalid_argument("brubeck: a reply frame needs 1.." +
                                std::to_string(kMaxIdsPerFrame) + " connection ids");
  }
}

}  // namespace

std::string_view to_string(DecodeError e) noexcept {
  switch (e) {
    case DecodeError::ok:
      return "ok";
    case DecodeError::truncated:
      return "truncated";
    case DecodeError::bad_sender:
      return "bad sender";
    case DecodeError::bad_conn_id:
      return "bad conn id";
    case DecodeError::bad_path:
      return "bad path";
    case DecodeError::bad_netstring_length:
      return "bad netstring length";
    case DecodeError::missing_terminator:
      return "missing terminator";
    case DecodeError::bad_headers:
      return "bad headers";
    case DecodeError::trailing_bytes:
      return "trailing bytes";
  }
  return "unknown decode error";
}

const Header* Frame::find(std::string_view name) const noexcept {
  for (const Header& h : headers) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

std::optional<RouteKey> peek_route_key(std::string_view frame) noexcept {
  RouteKey key;
  std::size_t pos = 0;
  if (scan_route_key(frame, key, pos) != DecodeError::ok) return std::nullopt;
  return key;
}

namespace {

// Where every quote in `json` is, or false when it holds a backslash (an
// escape) or more than kMaxQuotes quotes. With no backslash, every quote
// opens or closes a string. Every other byte is allowed: inside a string it
// is header text (raw, as Mongrel2 passes it), and outside one the shape
// check rejects it.
constexpr std::size_t kMaxQuotes = 512;

bool find_quotes(std::string_view json, std::uint32_t* quotes, std::size_t& n) noexcept {
  const char* const s = json.data();
  const std::size_t size = json.size();
  std::size_t i = 0;
  n = 0;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  for (; i + 16 <= size; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(v, backslash)) != 0) return false;
    auto q = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)));
    for (; q != 0; q &= q - 1) {
      if (n == kMaxQuotes) return false;
      quotes[n++] = static_cast<std::uint32_t>(i + static_cast<unsigned>(__builtin_ctz(q)));
    }
  }
#endif
  for (; i < size; ++i) {
    if (s[i] == '\\') return false;
    if (s[i] == '"') {
      if (n == kMaxQuotes) return false;
      quotes[n++] = static_cast<std::uint32_t>(i);
    }
  }
  return true;
}

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The full reader of Mongrel2's JSON dialect (see flat_json.hpp).
class JsonHeaderReader {
 public:
  JsonHeaderReader(std::string_view json, std::shared_ptr<char[]>& unescaped)
      : in_(json), unescaped_(unescaped) {}

  bool read(std::vector<Header>& out) {
    skip_space();
    if (!next_is('{')) return false;
    skip_space();
    if (!next_is('}')) {
      for (;;) {
        std::string_view name, value;
        skip_space();
        if (!string(name)) return false;
        skip_space();
        if (!next_is(':')) return false;
        skip_space();
        if (next_is('[')) {
          skip_space();
          if (!next_is(']')) {
            for (;;) {
              skip_space();
              if (!string(value)) return false;
              out.push_back(Header{name, value});
              skip_space();
              if (next_is(']')) break;
              if (!next_is(',')) return false;
            }
          }
        } else {
          if (!string(value)) return false;
          out.push_back(Header{name, value});
        }
        skip_space();
        if (next_is('}')) break;
        if (!next_is(',')) return false;
      }
    }
    skip_space();
    return pos_ == in_.size();
  }

 private:
  void skip_space() noexcept {
    while (pos_ < in_.size() &&
           (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' || in_[pos_] == '\r'))
      ++pos_;
  }

  bool next_is(char c) noexcept {
    if (pos_ == in_.size() || in_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  // A string at pos_: a view into the input when it has no escape, else its
  // unescaped text in the shared buffer.
  bool string(std::string_view& text) {
    if (!next_is('"')) return false;
    const std::size_t begin = pos_;
    while (pos_ < in_.size() && in_[pos_] != '"' && in_[pos_] != '\\') ++pos_;
    if (pos_ == in_.size()) return false;
    if (in_[pos_] == '"') {
      text = in_.substr(begin, pos_ - begin);
      ++pos_;
      return true;
    }
    // No unescaped text is longer than its JSON, so json.size() bytes hold
    // all of them.
    if (!unescaped_) unescaped_ = std::make_shared<char[]>(in_.size());
    char* const start = unescaped_.get() + used_;
    char* out = start;
    out = std::copy(in_.data() + begin, in_.data() + pos_, out);
    while (pos_ < in_.size() && in_[pos_] != '"') {
      if (in_[pos_] != '\\') {
        *out++ = in_[pos_++];
        continue;
      }
      if (++pos_ == in_.size()) return false;
      switch (in_[pos_++]) {
        case '"':
          *out++ = '"';
          break;
        case '\\':
          *out++ = '\\';
          break;
        case '/':
          *out++ = '/';
          break;
        case 'b':
          *out++ = '\b';
          break;
        case 'f':
          *out++ = '\f';
          break;
        case 'n':
          *out++ = '\n';
          break;
        case 'r':
          *out++ = '\r';
          break;
        case 't':
          *out++ = '\t';
          break;
        case 'u':
          if (!code_point(out)) return false;
          break;
        default:
          return false;
      }
    }
    if (pos_ == in_.size()) return false;
    ++pos_;  // the closing quote
    text = std::string_view(start, static_cast<std::size_t>(out - start));
    used_ += text.size();
    return true;
  }

  bool hex4(std::uint32_t& v) noexcept {
    if (in_.size() - pos_ < 4) return false;
    v = 0;
    for (int k = 0; k < 4; ++k) {
      const int d = hex_digit(in_[pos_++]);
      if (d < 0) return false;
      v = v * 16 + static_cast<std::uint32_t>(d);
    }
    return true;
  }

  // After "\u": the code point as UTF-8. A surrogate pair is one code point;
  // a lone surrogate, which has no UTF-8 form, becomes U+FFFD. Either way
  // the output is shorter than the escape it replaces.
  bool code_point(char*& out) noexcept {
    std::uint32_t cp = 0;
    if (!hex4(cp)) return false;
    if (cp >= 0xD800 && cp <= 0xDBFF && in_.size() - pos_ >= 6 && in_[pos_] == '\\' &&
        in_[pos_ + 1] == 'u') {
      const std::size_t mark = pos_;
      pos_ += 2;
      std::uint32_t low = 0;
      if (!hex4(low)) return false;
      if (low >= 0xDC00 && low <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      } else {
        pos_ = mark;  // not a pair: the next escape stands alone
      }
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
    auto put = [&](std::uint32_t b) { *out++ = static_cast<char>(b); };
    if (cp < 0x80) {
      put(cp);
    } else if (cp < 0x800) {
      put(0xC0 | (cp >> 6));
      put(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      put(0xE0 | (cp >> 12));
      put(0x80 | ((cp >> 6) & 0x3F));
      put(0x80 | (cp & 0x3F));
    } else {
      put(0xF0 | (cp >> 18));
      put(0x80 | ((cp >> 12) & 0x3F));
      put(0x80 | ((cp >> 6) & 0x3F));
      put(0x80 | (cp & 0x3F));
    }
    return true;
  }

  std::string_view in_;
  std::size_t pos_ = 0;
  std::shared_ptr<char[]>& unescaped_;
  std::size_t used_ = 0;
};

}  // namespace

bool detail::scan_flat_json_headers(std::string_view json, std::vector<Header>& out) {
  if (json.size() > UINT32_MAX) return false;
  std::uint32_t quotes[kMaxQuotes];
  std::size_t quote_count = 0;
  if (!find_quotes(json, quotes, quote_count)) return false;
  const char* const base = json.data();
  const char* p = base;
  const char* const end = base + json.size();
  std::size_t next_quote = 0;
  // A string starts at p: its closing quote is the next quote of all.
  auto string = [&](std::string_view& text) {
    if (p == end || *p != '"' || next_quote + 1 >= quote_count) return false;
    const char* close = base + quotes[next_quote + 1];
    next_quote += 2;
    text = std::string_view(p + 1, static_cast<std::size_t>(close - p - 1));
    p = close + 1;
    return true;
  };
  // The next byte is `c`, consumed.
  auto next_is = [&](char c) {
    if (p == end || *p != c) return false;
    ++p;
    return true;
  };
  if (!next_is('{')) return false;
  if (!next_is('}')) {
    for (;;) {
      std::string_view name, value;
      if (!string(name) || !next_is(':')) return false;
      if (next_is('[')) {
        if (!next_is(']')) {
          do {
            if (!string(value)) return false;
            out.push_back(Header{name, value});
          } while (next_is(','));
          if (!next_is(']')) return false;
        }
      } else {
        if (!string(value)) return false;
        out.push_back(Header{name, value});
      }
      if (next_is('}')) break;
      if (!next_is(',')) return false;
    }
  }
  return p == end;
}

bool detail::parse_json_headers(std::string_view json, std::vector<Header>& out,
                                std::shared_ptr<char[]>& unescaped) {
  return JsonHeaderReader(json, unescaped).read(out);
}

struct FrameDecoder::Impl {
  simdjson::ondemand::parser parser;
  // simdjson reads up to SIMDJSON_PADDING bytes past the document, and the
  // caller's bytes carry no such promise, so JSON is copied here first. It
  // only grows, so a steady stream of frames stops allocating.
  std::vector<char> scratch;

  simdjson::simdjson_result<simdjson::ondemand::document> iterate(std::string_view json) {
    const std::size_t need = json.size() + simdjson::SIMDJSON_PADDING;
    if (scratch.size() < need) scratch.resize(std::max(need, scratch.size() * 2));
    if (!json.empty()) std::memcpy(scratch.data(), json.data(), json.size());
    // Stale bytes of an earlier, longer frame would otherwise follow the
    // document; blanks make the padding inert whatever simdjson peeks at.
    std::memset(scratch.data() + json.size(), ' ', simdjson::SIMDJSON_PADDING);
    return parser.iterate(scratch.data(), json.size(), scratch.size());
  }

  DecodeError decode(std::string_view bytes, Frame& out);
  bool is_disconnect_body(std::string_view body);
};

bool FrameDecoder::Impl::is_disconnect_body(std::string_view body) {
  using namespace simdjson;
  ondemand::document doc;
  if (iterate(body).get(doc) != SUCCESS) return false;
  ondemand::object obj;
  if (doc.get_object().get(obj) != SUCCESS) return false;
  std::string_view type;
  if (obj.find_field_unordered("type").get_string().get(type) != SUCCESS) return false;
  return type == "disconnect";
}

// Fills `out` only once the frame is known good; FrameDecoder::decode resets
// it on any error.
DecodeError FrameDecoder::Impl::decode(std::string_view bytes, Frame& out) {
  RouteKey key;
  std::size_t pos = 0;
  if (const auto e = scan_route_key(bytes, key, pos); e != DecodeError::ok) return e;

  const std::size_t path_end = find_char(bytes, pos, bytes.size(), ' ');
  if (path_end == std::string_view::npos) return DecodeError::truncated;
  if (path_end == pos) return DecodeError::bad_path;
  const std::string_view path = bytes.substr(pos, path_end - pos);
  pos = path_end + 1;

  Netstring headers;
  Netstring body;
  if (const auto e = read_netstring(bytes, pos, headers); e != DecodeError::ok) return e;
  if (headers.tag != ',' && headers.tag != '}') return DecodeError::missing_terminator;
  if (const auto e = read_netstring(bytes, pos, body); e != DecodeError::ok) return e;
  if (body.tag != ',') return DecodeError::missing_terminator;
  if (pos != bytes.size()) return DecodeError::trailing_bytes;

  // Whole framing first: a frame broken at the end is rejected without
  // paying for a JSON parse.
  out.headers.clear();  // keeps the vector's capacity across frames
  DecodeError e = DecodeError::ok;
  // Browsers send ~10-20 headers: one allocation instead of a growth series.
  out.headers.reserve(24);
  out.unescaped.reset();
  if (headers.tag == ',') {
    // Mongrel2's exact shape first: one pass, no copy (most frames).
    if (!detail::scan_flat_json_headers(headers.payload, out.headers)) {
      out.headers.clear();
      if (!detail::parse_json_headers(headers.payload, out.headers, out.unescaped))
        e = DecodeError::bad_headers;
    }
  } else {
    e = parse_tnetstring_headers(headers.payload, out.headers);
  }
  if (e != DecodeError::ok) return e;

  out.sender = key.sender;
  out.conn_id = key.conn_id;
  out.path = path;
  out.body = body.payload;
  out.kind = FrameKind::http;
  if (const Header* method = out.find("METHOD")) {
    if (method->value == "JSON") {
      bool disconnect = false;
      try {
        disconnect = is_disconnect_body(body.payload);
      } catch (const simdjson::simdjson_error&) {
        // A body that is not JSON is still a socket message, just not a disconnect.
      }
      out.kind = disconnect ? FrameKind::disconnect : FrameKind::json;
    } else if (method->value == "XML") {
      out.kind = FrameKind::xml;
    }
  }
  const Header* start = out.find("x-mongrel2-upload-start");
  const Header* done = out.find("x-mongrel2-upload-done");
  out.upload_start = start != nullptr ? start->value : std::string_view();
  out.upload_done = done != nullptr ? done->value : std::string_view();
  return DecodeError::ok;
}

FrameAction frame_action(std::string_view bytes, DecodeError e, const Frame& frame) noexcept {
  if (!peek_route_key(bytes)) return FrameAction::drop;
  if (e != DecodeError::ok) return FrameAction::reject;
  switch (frame.kind) {
    case FrameKind::disconnect:
      return FrameAction::disconnect;
    case FrameKind::json:
    case FrameKind::xml:
      return FrameAction::close;
    case FrameKind::http:
      break;
  }
  if (frame.find("METHOD") == nullptr || frame.find("PATH") == nullptr) return FrameAction::reject;
  return FrameAction::serve;
}

FrameDecoder::FrameDecoder() : impl_(std::make_unique<Impl>()) {}
FrameDecoder::~FrameDecoder() = default;

DecodeError FrameDecoder::decode(std::string_view bytes, Frame& out) {
  const DecodeError e = impl_->decode(bytes, out);
  if (e != DecodeError::ok) {
    out.sender = {};
    out.conn_id = {};
    out.path = {};
    out.body = {};
    out.kind = FrameKind::http;
    out.headers.clear();
    out.upload_start = {};
    out.upload_done = {};
    out.unescaped.reset();
  }
  return e;
}

void append_reply_prefix(std::string& out, std::string_view sender,
                         std::span<const std::string_view> conn_ids) {
  check_id_count(conn_ids.size());
  const std::size_t ids_len = id_list_length(conn_ids);
  out.reserve(out.size() + prefix_length(sender, ids_len));
  append_prefix_unchecked(out, sender, conn_ids, ids_len);
}

std::string encode_reply(std::string_view sender, std::string_view conn_id, std::string_view body) {
  const std::span<const std::string_view> ids(&conn_id, 1);
  const std::size_t ids_len = conn_id.size();
  std::string out;
  out.reserve(prefix_length(sender, ids_len) + body.size());
  append_prefix_unchecked(out, sender, ids, ids_len);
  out.append(body);
  return out;
}

std::vector<std::string> encode_broadcast(std::string_view sender,
                                          std::span<const std::string_view> conn_ids,
                                          std::string_view body) {
  std::vector<std::string> frames;
  frames.reserve((conn_ids.size() + kMaxIdsPerFrame - 1) / kMaxIdsPerFrame);
  for (std::size_t first = 0; first < conn_ids.size(); first += kMaxIdsPerFrame) {
    const auto chunk = conn_ids.subspan(first, std::min(kMaxIdsPerFrame, conn_ids.size() - first));
    const std::size_t ids_len = id_list_length(chunk);
    std::string& frame = frames.emplace_back();
    frame.reserve(prefix_length(sender, ids_len) + body.size());
    append_prefix_unchecked(frame, sender, chunk, ids_len);
    frame.append(body);
  }
  return frames;
}

}  // namespace brubeck

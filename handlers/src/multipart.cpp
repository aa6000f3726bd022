#include "brubeck/handlers/multipart.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

namespace brubeck {
namespace {

constexpr std::size_t kMaxBoundary = 70;  // RFC 2046
// "\r\n--" + boundary, which RFC 2046 caps, so it fits a fixed buffer.
using DelimiterBuffer = std::array<char, 4 + kMaxBoundary>;

char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool iequals_ascii(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

// Byte classes as 256-entry tables: the boundary and every header name and
// parameter are checked byte by byte, so a search per byte would dominate a
// small form.
enum CharClass : std::uint8_t {
  kTchar = 1 << 0,         // RFC 9110 token
  kTspecial = 1 << 1,      // RFC 2045 tspecials
  kBcharNoSpace = 1 << 2,  // RFC 2046 bcharsnospace
  kAttrChar = 1 << 3,      // RFC 5987 attr-char
};

constexpr std::array<std::uint8_t, 256> make_char_classes() {
  std::array<std::uint8_t, 256> t{};
  auto add = [&t](std::string_view chars, std::uint8_t cls) {
    for (char c : chars) t[static_cast<unsigned char>(c)] |= cls;
  };
  for (int c = 0; c < 256; ++c)
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
      t[static_cast<std::size_t>(c)] = kTchar | kBcharNoSpace | kAttrChar;
  add("!#$%&'*+-.^_`|~", kTchar);
  add("()<>@,;:\\\"/[]?=", kTspecial);
  add("'()+_,-./:=?", kBcharNoSpace);
  add("!#$&+-.^_`|~", kAttrChar);
  return t;
}

constexpr std::array<std::uint8_t, 256> kCharClasses = make_char_classes();

bool has_class(char c, CharClass cls) noexcept {
  return (kCharClasses[static_cast<unsigned char>(c)] & cls) != 0;
}
bool is_tchar(char c) noexcept { return has_class(c, kTchar); }
bool is_tspecial(char c) noexcept { return has_class(c, kTspecial); }
bool is_bchar_nospace(char c) noexcept { return has_class(c, kBcharNoSpace); }
bool is_attr_char(char c) noexcept { return has_class(c, kAttrChar); }

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// find_first_of with a small set costs a memchr call per byte in libstdc++,
// and quoted parameter values are scanned with this.
std::size_t find_either(std::string_view s, std::size_t from, char a, char b) noexcept {
  for (std::size_t i = from; i < s.size(); ++i)
    if (s[i] == a || s[i] == b) return i;
  return std::string_view::npos;
}

std::size_t saturating_add(std::size_t a, std::size_t b) noexcept {
  return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

// Splits "type; a=b; ..." into the trimmed type and the "; a=b; ..." rest.
std::string_view split_type(std::string_view value, std::string_view& params) noexcept {
  const std::size_t semi = value.find(';');
  if (semi == std::string_view::npos) {
    params = {};
    return trim_ows(value);
  }
  params = value.substr(semi);
  return trim_ows(value.substr(0, semi));
}

// Walks the `; name=value` list after a media or disposition type.
class ParamReader {
 public:
  // With `msie_paths`, a backslash escapes only a tspecial: MSIE and HTML5
  // senders put raw Windows paths in filename="...", and no sender escapes a
  // letter, so `\U` in "C:\Users" is read as a backslash and a 'U'.
  ParamReader(std::string_view params, bool msie_paths) noexcept
      : s_(params), msie_paths_(msie_paths) {}

  // The next parameter, or false at the end or on a syntax error (failed()).
  bool next(std::string_view& name, std::string& value) {
    for (;;) {
      skip_ows();
      if (pos_ == s_.size()) return false;
      if (s_[pos_] != ';') return fail();
      ++pos_;
      skip_ows();
      if (pos_ == s_.size()) return false;  // a trailing ';' is common
      if (s_[pos_] != ';') break;           // ";;" is an empty parameter
    }
    const std::size_t name_start = pos_;
    while (pos_ < s_.size() && is_tchar(s_[pos_])) ++pos_;
    if (pos_ == name_start) return fail();
    name = s_.substr(name_start, pos_ - name_start);
    skip_ows();
    if (pos_ == s_.size() || s_[pos_] != '=') return fail();
    ++pos_;
    skip_ows();
    value.clear();
    if (pos_ < s_.size() && s_[pos_] == '"') return read_quoted(value);
    // Unquoted values are meant to be tokens; bytes above 0x7f are let through
    // for the odd sender that puts a raw UTF-8 file name there.
    const std::size_t value_start = pos_;
    while (pos_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c <= 0x20 || c == 0x7f || c == ';' || c == '"') break;
      ++pos_;
    }
    if (pos_ == value_start) return fail();
    value.assign(s_.substr(value_start, pos_ - value_start));
    return true;
  }

  bool failed() const noexcept { return failed_; }

 private:
  bool read_quoted(std::string& value) {
    std::size_t i = pos_ + 1;
    for (;;) {
      const std::size_t stop = find_either(s_, i, '"', '\\');
      if (stop == std::string_view::npos) return fail();  // unterminated
      value.append(s_.substr(i, stop - i));
      if (s_[stop] == '"') {
        pos_ = stop + 1;
        return true;
      }
      if (stop + 1 < s_.size() && (!msie_paths_ || is_tspecial(s_[stop + 1]))) {
        value.push_back(s_[stop + 1]);
        i = stop + 2;
      } else {
        value.push_back('\\');
        i = stop + 1;
      }
    }
  }

  void skip_ows() noexcept {
    while (pos_ < s_.size() && is_ows(s_[pos_])) ++pos_;
  }

  bool fail() noexcept {
    failed_ = true;
    pos_ = s_.size();
    return false;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  bool msie_paths_;
  bool failed_ = false;
};

bool valid_boundary(std::string_view b) noexcept {
  if (b.empty() || b.size() > kMaxBoundary || b.back() == ' ') return false;
  for (char c : b)
    if (c != ' ' && !is_bchar_nospace(c)) return false;
  return true;
}

// Fills `delim` with "\r\n--" + boundary and returns its length in `len`.
MultipartError read_boundary(std::string_view content_type, DelimiterBuffer& delim,
                             std::size_t& len) {
  std::string_view params;
  if (!iequals_ascii(split_type(content_type, params), "multipart/form-data"))
    return MultipartError::not_multipart;
  ParamReader reader(params, /*msie_paths=*/false);
  std::string_view name;
  std::string value, boundary;
  bool found = false;
  while (reader.next(name, value)) {
    if (!iequals_ascii(name, "boundary")) continue;
    // Two boundaries could make two parsers on the way split differently.
    if (found) return MultipartError::bad_boundary;
    found = true;
    boundary = std::move(value);
  }
  if (reader.failed() || !found || !valid_boundary(boundary)) return MultipartError::bad_boundary;
  std::memcpy(delim.data(), "\r\n--", 4);
  std::memcpy(delim.data() + 4, boundary.data(), boundary.size());
  len = 4 + boundary.size();
  return MultipartError::ok;
}

// Position of the next "\r\n--boundary" at or after `from`. memchr finds the
// CR at memory speed and only a CR pays for a compare, which keeps a large
// binary file part within a small factor of a bare memchr scan.
std::size_t find_delimiter(std::string_view s, std::size_t from, std::string_view delim) noexcept {
  if (from > s.size() || s.size() - from < delim.size()) return std::string_view::npos;
  const char* const base = s.data();
  const char* const last = base + (s.size() - delim.size());  // last possible start
  const char* p = base + from;
  while (p <= last) {
    const void* hit = std::memchr(p, '\r', static_cast<std::size_t>(last - p) + 1);
    if (hit == nullptr) break;
    const char* const cr = static_cast<const char*>(hit);
    // In binary data a CR is followed by LF 1 time in 256: test it inline.
    if (cr[1] == '\n' && std::memcmp(cr + 2, delim.data() + 2, delim.size() - 2) == 0)
      return static_cast<std::size_t>(cr - base);
    p = cr + 1;
  }
  return std::string_view::npos;
}

enum class DelimKind : std::uint8_t { none, part, close };

// What follows a boundary string at `after`: "--" closes the body, optional
// spaces or tabs then CRLF open a part (its start in `next`); anything else
// means the boundary string was part of the data.
DelimKind classify(std::string_view s, std::size_t after, std::size_t& next) noexcept {
  if (s.size() - after >= 2 && s[after] == '-' && s[after + 1] == '-') return DelimKind::close;
  std::size_t q = after;
  while (q < s.size() && is_ows(s[q])) ++q;
  if (s.size() - q >= 2 && s[q] == '\r' && s[q + 1] == '\n') {
    next = q + 2;
    return DelimKind::part;
  }
  return DelimKind::none;
}

struct Delimiter {
  std::size_t at = std::string_view::npos;  // where the CRLF before "--" starts
  DelimKind kind = DelimKind::none;
  std::size_t next = 0;  // start of the next part when kind == part
};

Delimiter next_delimiter(std::string_view s, std::size_t from, std::string_view delim) noexcept {
  Delimiter d;
  for (;;) {
    const std::size_t at = find_delimiter(s, from, delim);
    if (at == std::string_view::npos) return d;
    d.kind = classify(s, at + delim.size(), d.next);
    if (d.kind != DelimKind::none) {
      d.at = at;
      return d;
    }
    from = at + 1;
  }
}

// RFC 5987 ext-value: charset'language'pct-encoded. False if it is not one,
// or its charset is neither UTF-8 nor ISO-8859-1.
bool decode_ext_value(std::string_view v, std::string& out) {
  const std::size_t q1 = v.find('\'');
  if (q1 == std::string_view::npos) return false;
  const std::size_t q2 = v.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) return false;
  const std::string_view charset = v.substr(0, q1);
  const bool latin1 = iequals_ascii(charset, "ISO-8859-1");
  if (!latin1 && !iequals_ascii(charset, "UTF-8")) return false;
  out.clear();
  for (std::size_t i = q2 + 1; i < v.size(); ++i) {
    unsigned char byte;
    if (v[i] == '%') {
      if (v.size() - i < 3) return false;
      const int hi = hex_value(v[i + 1]), lo = hex_value(v[i + 2]);
      if (hi < 0 || lo < 0) return false;
      byte = static_cast<unsigned char>(hi * 16 + lo);
      i += 2;
    } else if (is_attr_char(v[i])) {
      byte = static_cast<unsigned char>(v[i]);
    } else {
      return false;
    }
    if (latin1 && byte >= 0x80) {
      out.push_back(static_cast<char>(0xc0 | (byte >> 6)));
      out.push_back(static_cast<char>(0x80 | (byte & 0x3f)));
    } else {
      out.push_back(static_cast<char>(byte));
    }
  }
  return true;
}

// A part header value, unfolded into `folded` only when a continuation line
// makes that necessary.
struct HeaderValue {
  bool present = false;
  std::string_view value;
  std::string folded;

  // An obs-fold reads as one space, but a value has no leading or trailing
  // whitespace: a blank continuation line adds nothing, and one after an
  // empty value adds no space (else the value would not survive being
  // written out and read again).
  void append_continuation(std::string_view more) {
    if (more.empty()) return;
    if (value.data() != folded.data()) folded.assign(value);
    if (!folded.empty()) folded.push_back(' ');
    folded.append(more);
    value = folded;
  }
};

// `block` is the part's header lines, each ending in CRLF.
MultipartError parse_part_headers(std::string_view block, FormPart& part) {
  HeaderValue disposition, type;
  HeaderValue* current = nullptr;  // the header a continuation line extends
  bool seen_header = false;
  std::size_t i = 0;
  while (i < block.size()) {
    // A lone CR or LF would let another parser see different headers, so a
    // line ends at its first CR, which must start a CRLF, and holds no LF.
    const std::size_t eol = block.find('\r', i);
    if (eol == std::string_view::npos || eol + 1 == block.size() || block[eol + 1] != '\n')
      return MultipartError::malformed;
    const std::string_view line = block.substr(i, eol - i);
    i = eol + 2;
    if (line.empty() || line.find('\n') != std::string_view::npos) return MultipartError::malformed;
    if (is_ows(line.front())) {
      if (!seen_header) return MultipartError::malformed;
      if (current != nullptr) current->append_continuation(trim_ows(line));
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return MultipartError::malformed;
    const std::string_view name = line.substr(0, colon);
    for (char c : name)
      if (!is_tchar(c)) return MultipartError::malformed;
    seen_header = true;
    if (iequals_ascii(name, "content-disposition"))
      current = &disposition;
    else if (iequals_ascii(name, "content-type"))
      current = &type;
    else
      current = nullptr;
    if (current != nullptr) {
      if (current->present) return MultipartError::malformed;
      current->present = true;
      current->value = trim_ows(line.substr(colon + 1));
    }
  }
  if (!disposition.present) return MultipartError::malformed;

  std::string_view params;
  if (!iequals_ascii(split_type(disposition.value, params), "form-data"))
    return MultipartError::malformed;
  ParamReader reader(params, /*msie_paths=*/true);
  std::string_view name;
  std::string value, filename, ext_filename;
  bool have_name = false, have_filename = false, have_ext = false;
  while (reader.next(name, value)) {
    std::string* target = nullptr;
    bool* seen = nullptr;
    if (iequals_ascii(name, "name")) {
      target = &part.name;
      seen = &have_name;
    } else if (iequals_ascii(name, "filename")) {
      target = &filename;
      seen = &have_filename;
    } else if (iequals_ascii(name, "filename*")) {
      target = &ext_filename;
      seen = &have_ext;
    } else {
      continue;
    }
    if (*seen) return MultipartError::malformed;
    *seen = true;
    target->swap(value);
  }
  if (reader.failed() || !have_name) return MultipartError::malformed;

  if (have_filename || have_ext) {
    std::string decoded;
    // An undecodable filename* falls back to filename, as RFC 6266 asks.
    if (have_ext && decode_ext_value(ext_filename, decoded)) filename.swap(decoded);
    // Cut after decoding, so an encoded "%2F" cannot smuggle a path through.
    for (std::size_t n = filename.size(); n > 0; --n) {
      if (filename[n - 1] == '/' || filename[n - 1] == '\\') {
        filename.erase(0, n);
        break;
      }
    }
    part.filename = std::move(filename);
  }
  const std::string_view content_type = type.present ? type.value : std::string_view();
  if (!content_type.empty())
    part.content_type.assign(content_type);
  else
    part.content_type = part.filename ? "application/octet-stream" : "text/plain";
  return MultipartError::ok;
}

MultipartError parse_parts(std::string_view content_type, std::string_view body,
                           std::vector<FormPart>& out, const MultipartLimits& limits) {
  DelimiterBuffer buffer;
  std::size_t delim_len = 0;
  if (const auto e = read_boundary(content_type, buffer, delim_len); e != MultipartError::ok)
    return e;
  const std::string_view delim(buffer.data(), delim_len);
  const std::string_view dash_boundary = delim.substr(2);

  // The first boundary needs no CRLF before it when it opens the body.
  Delimiter d;
  if (body.starts_with(dash_boundary)) {
    d.kind = classify(body, dash_boundary.size(), d.next);
    d.at = 0;
  }
  if (d.kind == DelimKind::none) d = next_delimiter(body, 0, delim);
  if (d.kind == DelimKind::none) return MultipartError::malformed;

  while (d.kind == DelimKind::part) {
    if (out.size() >= limits.max_parts) return MultipartError::too_many_parts;
    const std::size_t start = d.next;
    const std::size_t rest = body.size() - start;
    std::size_t header_len = 0;  // header lines with their CRLFs
    std::size_t body_start;
    if (rest >= 2 && body[start] == '\r' && body[start + 1] == '\n') {
      body_start = start + 2;  // no headers: malformed below, as there is no name
    } else {
      // Past the limit plus the blank line's CRLF, the headers are too large
      // whether or not their end ever comes.
      const std::size_t window = std::min(rest, saturating_add(limits.max_part_header_bytes, 2));
      const std::size_t end = body.substr(start, window).find("\r\n\r\n");
      if (end == std::string_view::npos)
        return window < rest ? MultipartError::headers_too_large : MultipartError::malformed;
      header_len = end + 2;
      body_start = start + end + 4;
    }
    if (header_len > limits.max_part_header_bytes) return MultipartError::headers_too_large;

    FormPart part;
    if (const auto e = parse_part_headers(body.substr(start, header_len), part);
        e != MultipartError::ok)
      return e;
    d = next_delimiter(body, body_start, delim);
    if (d.kind == DelimKind::none) return MultipartError::malformed;
    const std::size_t size = d.at - body_start;
    if (size > (part.is_file() ? limits.max_file_bytes : limits.max_field_bytes))
      return MultipartError::part_too_large;
    part.body = body.substr(body_start, size);
    out.push_back(std::move(part));
  }
  return MultipartError::ok;
}

}  // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  DelimiterBuffer buffer;
  std::size_t len = 0;
  if (read_boundary(content_type, buffer, len) != MultipartError::ok) return std::nullopt;
  return std::string(buffer.data() + 4, len - 4);
}

std::string_view to_string(MultipartError e) noexcept {
  switch (e) {
    case MultipartError::ok:
      return "ok";
    case MultipartError::not_multipart:
      return "not multipart/form-data";
    case MultipartError::bad_boundary:
      return "missing or invalid multipart boundary";
    case MultipartError::malformed:
      return "malformed multipart body";
    case MultipartError::too_many_parts:
      return "too many multipart parts";
    case MultipartError::part_too_large:
      return "multipart part too large";
    case MultipartError::headers_too_large:
      return "multipart part headers too large";
  }
  return "unknown multipart error";
}

MultipartError parse_multipart(std::string_view content_type, std::string_view body,
                               std::vector<FormPart>& out, const MultipartLimits& limits) {
  out.clear();
  const MultipartError e = parse_parts(content_type, body, out, limits);
  if (e != MultipartError::ok) out.clear();
  return e;
}

}  // namespace brubeck

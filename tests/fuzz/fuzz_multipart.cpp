// multipart/form-data bodies (parse_multipart, multipart_boundary).
//
// Input: the first line is the Content-Type header value (so the boundary
// comes from the first input bytes, and its parameter parsing is fuzzed as
// well), the rest is the body. Seeds are bodies captured from `curl -F` and
// browsers.
//
// Properties: multipart_boundary and parse_multipart agree on which types are
// usable; on success the parts are in order, views into the body, within the
// limits, and none holds a delimiter that should have ended it; a parse that
// succeeds under tight limits succeeds the same way under the defaults; and
// writing the parts out again (canonical form, filename* encoded) parses back
// to the same parts.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "brubeck/handlers/multipart.hpp"
#include "fuzz_common.hpp"

using namespace brubeck;
using namespace brubeck::fuzz;

namespace {

bool same_parts(const std::vector<FormPart>& a, const std::vector<FormPart>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].name != b[i].name || a[i].filename != b[i].filename ||
        a[i].content_type != b[i].content_type || a[i].body != b[i].body)
      return false;
  return true;
}

// Does `data` hold "\r\n--boundary" followed by "--" or by optional spaces
// and tabs then CRLF (which would have ended the part)?
bool holds_delimiter(std::string_view data, std::string_view boundary) {
  const std::string delim = "\r\n--" + std::string(boundary);
  for (std::size_t at = data.find(delim); at != std::string_view::npos;
       at = data.find(delim, at + 1)) {
    std::size_t q = at + delim.size();
    if (data.substr(q, 2) == "--") return true;
    while (q < data.size() && (data[q] == ' ' || data[q] == '\t')) ++q;
    if (data.substr(q, 2) == "\r\n") return true;
  }
  return false;
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

std::string ext_value(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "UTF-8''";
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    out += '%';
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}

std::string write_parts(const std::vector<FormPart>& parts, std::string_view boundary) {
  std::string out;
  for (const FormPart& p : parts) {
    out += "--" + std::string(boundary) + "\r\n";
    out += "Content-Disposition: form-data; name=" + quoted(p.name);
    if (p.filename) out += "; filename*=" + ext_value(*p.filename);
    out += "\r\nContent-Type: " + p.content_type + "\r\n\r\n";
    out += p.body;
    out += "\r\n";
  }
  return out + "--" + std::string(boundary) + "--\r\n";
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = as_view(data, size);
  const std::size_t nl = input.find('\n');
  if (nl == std::string_view::npos) return 0;
  const std::string_view content_type = input.substr(0, nl);
  // Exact-size copies, so reads past either end trip ASan.
  const ExactCopy ct_copy(content_type);
  const ExactCopy body_copy(input.substr(nl + 1));
  const std::string_view ct = ct_copy.view();
  const std::string_view body = body_copy.view();

  const auto boundary = multipart_boundary(ct);
  std::vector<FormPart> parts;
  const MultipartError e = parse_multipart(ct, body, parts);
  const bool type_error = e == MultipartError::not_multipart || e == MultipartError::bad_boundary;
  FUZZ_CHECK(type_error == !boundary);
  if (boundary) FUZZ_CHECK(!boundary->empty() && boundary->size() <= 70);
  if (e != MultipartError::ok) FUZZ_CHECK(parts.empty());

  MultipartLimits tight;
  tight.max_parts = 3;
  tight.max_part_header_bytes = 100;
  tight.max_file_bytes = 64;
  tight.max_field_bytes = 16;
  std::vector<FormPart> tight_parts;
  const MultipartError te = parse_multipart(ct, body, tight_parts, tight);
  if (te == MultipartError::ok)
    FUZZ_CHECK(e == MultipartError::ok && same_parts(parts, tight_parts));
  // Errors other than a limit do not depend on the limits... unless a limit
  // was hit first, earlier in the body.
  if (e != MultipartError::ok && te != MultipartError::ok) {
    const bool limit = te == MultipartError::too_many_parts ||
                       te == MultipartError::part_too_large ||
                       te == MultipartError::headers_too_large;
    if (!limit) FUZZ_CHECK(te == e);
  }
  if (e != MultipartError::ok) return 0;

  const MultipartLimits defaults;
  FUZZ_CHECK(parts.size() <= defaults.max_parts);
  const char* previous_end = body.data();
  for (const FormPart& p : parts) {
    FUZZ_CHECK(within(p.body, body));
    FUZZ_CHECK(p.body.empty() || p.body.data() >= previous_end);
    if (!p.body.empty()) previous_end = p.body.data() + p.body.size();
    FUZZ_CHECK(!holds_delimiter(p.body, *boundary));
    FUZZ_CHECK(!p.content_type.empty());
    FUZZ_CHECK(p.body.size() <= (p.is_file() ? defaults.max_file_bytes : defaults.max_field_bytes));
    if (p.filename) FUZZ_CHECK(p.filename->find_first_of("/\\") == std::string::npos);
  }

  const ExactCopy rewritten(write_parts(parts, *boundary));
  std::vector<FormPart> again;
  MultipartLimits roomy;
  roomy.max_part_header_bytes = SIZE_MAX;
  FUZZ_CHECK(parse_multipart(ct, rewritten.view(), again, roomy) == MultipartError::ok);
  FUZZ_CHECK(same_parts(parts, again));
  return 0;
}

// multipart/form-data (RFC 7578): what browsers and `curl -F` send when a
// form carries files. The parser splits a request body into its parts
// without copying their contents: each part's body is a view into the input,
// which may be a large upload spooled to disk and mapped, so the input must
// outlive the parts. Limits bound what a hostile body can make it allocate,
// and the error says which limit was hit so a handler can answer 413.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace brubeck {

// The boundary of a Content-Type such as `multipart/form-data; boundary="abc"`
// (media type and parameter names compared without regard to case; token or
// quoted boundary of 1..70 characters from RFC 2046's set, no trailing space).
// nullopt if the media type is not multipart/form-data, or the boundary is
// missing, repeated or invalid.
std::optional<std::string> multipart_boundary(std::string_view content_type);

struct MultipartLimits {
  std::size_t max_parts = 1000;
  // Header block of one part, CRLFs included, the empty line ending it not.
  std::size_t max_part_header_bytes = 16 * 1024;
  std::size_t max_file_bytes = SIZE_MAX;
  std::size_t max_field_bytes = 1 << 20;
};

struct FormPart {
  std::string name;
  // Present (possibly empty) for a file. Reduced to its last path component,
  // since some browsers send the full client path; it may still be "." or
  // "..", or hold any byte but '/' and '\\', so it is not a safe file name.
  std::optional<std::string> filename;
  // As sent, parameters included; text/plain for a field and
  // application/octet-stream for a file when the part has none.
  std::string content_type;
  // A view into the body passed to parse_multipart.
  std::string_view body;

  bool is_file() const noexcept { return filename.has_value(); }
};

enum class MultipartError : std::uint8_t {
  ok,
  not_multipart,      // the Content-Type is not multipart/form-data
  bad_boundary,       // multipart/form-data without a usable boundary
  malformed,          // includes a body cut short before the close delimiter
  too_many_parts,     // more than max_parts
  part_too_large,     // a body above max_file_bytes or max_field_bytes
  headers_too_large,  // a header block above max_part_header_bytes
};

std::string_view to_string(MultipartError e) noexcept;

// Parses `body` sent with `content_type` into `out`, in order (a name may
// repeat). `out` is cleared first and left empty on error.
//
// Tolerated as senders produce them: a preamble and an epilogue (ignored),
// spaces or tabs after a boundary, folded part header lines, a first boundary
// with no CRLF before it, a body with no parts at all ("--boundary--", an
// empty form). A boundary string inside part data that is not followed by
// "--" or by the end of its line is data. In quoted parameter values a
// backslash escapes only a separator character (a double quote, a backslash, `;`, ...), so raw
// Windows paths such as "C:\Users\ada\notes.txt" keep their backslashes.
// `filename*=UTF-8''...` (RFC 5987, also ISO-8859-1) is preferred over
// `filename`; `%22`-style escapes of HTML5 senders are left as sent.
MultipartError parse_multipart(std::string_view content_type, std::string_view body,
                               std::vector<FormPart>& out, const MultipartLimits& limits = {});

}  // namespace brubeck

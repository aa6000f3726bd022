// The Cookie request header (parse_cookie_header), and format_set_cookie on
// what it yields.
//
// Properties: every pair has a token name and a trimmed value without ';';
// no more pairs than ';' separators plus one; writing the pairs out again
// (values quoted) parses back to the same pairs; format_set_cookie accepts a
// pair exactly when its value is made of cookie-octets (and the size and
// prefix rules hold), never lets a control byte into a Set-Cookie value, and
// what it writes parses back to the pair it was given.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "brubeck/handlers/cookies.hpp"
#include "fuzz_common.hpp"

using namespace brubeck;
using namespace brubeck::fuzz;

namespace {

bool has_ctl(std::string_view s) {
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) return true;
  }
  return false;
}

bool starts_with_icase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    char p = prefix[i];
    if (p >= 'A' && p <= 'Z') p = static_cast<char>(p + 32);
    if (c != p) return false;
  }
  return true;
}

void check_set_cookie(const std::string& name, const std::string& value, const CookieOptions& opt,
                      bool must_succeed) {
  std::string header;
  try {
    header = format_set_cookie(name, value, opt);
  } catch (const std::invalid_argument&) {
    FUZZ_CHECK(!must_succeed);
    return;
  }
  FUZZ_CHECK(!has_ctl(header));
  FUZZ_CHECK(header.compare(0, name.size() + 1 + value.size(), name + "=" + value) == 0);
  const auto back = parse_cookie_header(header);
  FUZZ_CHECK(!back.empty() && back[0].first == name);
  // A value in double quotes is read without them: the one allowed change.
  // (Cookie-octets exclude '"', so a value that format_set_cookie took has none.)
  FUZZ_CHECK(back[0].second == value);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ExactCopy copy(as_view(data, size));
  const std::string_view header = copy.view();

  const auto pairs = parse_cookie_header(header);
  std::size_t semis = 0;
  for (char c : header) semis += c == ';';
  FUZZ_CHECK(pairs.size() <= semis + 1);

  std::string rewritten;
  for (const auto& [name, value] : pairs) {
    FUZZ_CHECK(is_cookie_name(name));
    FUZZ_CHECK(value.find(';') == std::string::npos);
    if (!rewritten.empty()) rewritten += (rewritten.size() % 2 == 0) ? "; " : ";";
    rewritten += name + "=\"" + value + "\"";
  }
  FUZZ_CHECK(parse_cookie_header(rewritten) == pairs);

  for (const auto& [name, value] : pairs) {
    const bool prefixed =
        starts_with_icase(name, "__secure-") || starts_with_icase(name, "__host-");
    const bool ok = is_cookie_value(value) && name.size() + value.size() <= 4096 && !prefixed;
    check_set_cookie(name, value, CookieOptions{}, ok);

    // Attributes from the input too: whatever passes must stay one header
    // line with nothing smuggled in.
    CookieOptions opt;
    opt.path = "/" + value;
    opt.domain = name;
    opt.secure = true;
    opt.http_only = (value.size() & 1) != 0;
    opt.same_site = (name.size() & 1) ? "Lax" : "None";
    opt.max_age = std::chrono::seconds(static_cast<long long>(value.size()) - 2);
    check_set_cookie(name, value, opt, false);
  }
  return 0;
}

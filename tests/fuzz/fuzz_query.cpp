// Query strings and application/x-www-form-urlencoded bodies:
// parse_query_string and url_decode (Request::query_arguments, and
// WebMessageHandler's form arguments).
//
// Properties: decoding never grows the text; text without '%' or '+' comes
// back unchanged; every byte string survives percent-encoding then decoding;
// parse_query_string yields no more pairs than there are separators plus
// one, never an empty value, and exactly what decoding each "name=value"
// piece by hand gives.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "brubeck/handlers/request.hpp"
#include "fuzz_common.hpp"

using namespace brubeck;
using namespace brubeck::fuzz;

namespace {

std::string percent_encode_all(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    // Mix both cases of hex digits and leave some plain bytes as they are.
    const char* hex = (i % 3 == 0) ? "0123456789abcdef" : kHex;
    if (b == '%' || b == '+' || b == '&' || b == ';' || b == '=' || i % 2 == 0) {
      out += '%';
      out += hex[b >> 4];
      out += hex[b & 0xf];
    } else {
      out += s[i];
    }
  }
  return out;
}

// The reference: split on '&' and ';', keep pieces with '=' and a non-empty
// decoded value, written plainly.
std::vector<std::pair<std::string, std::string>> reference(std::string_view qs) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= qs.size(); ++i) {
    if (i < qs.size() && qs[i] != '&' && qs[i] != ';') continue;
    const std::string_view part = qs.substr(start, i - start);
    start = i + 1;
    const std::size_t eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    std::string value = url_decode(part.substr(eq + 1));
    if (value.empty()) continue;
    out.emplace_back(url_decode(part.substr(0, eq)), std::move(value));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = as_view(data, size);

  const std::string decoded = url_decode(input);
  FUZZ_CHECK(decoded.size() <= input.size());
  if (input.find_first_of("%+") == std::string_view::npos) FUZZ_CHECK(decoded == input);
  FUZZ_CHECK(url_decode(percent_encode_all(input)) == input);

  const auto args = parse_query_string(input);
  std::size_t separators = 0;
  for (char c : input) separators += c == '&' || c == ';';
  FUZZ_CHECK(args.size() <= separators + 1);
  for (const auto& [name, value] : args) FUZZ_CHECK(!value.empty());
  FUZZ_CHECK(args == reference(input));

  // Names and values encoded from the input come back as they were.
  if (!args.empty()) {
    std::string qs;
    for (const auto& [name, value] : args) {
      if (!qs.empty()) qs += (qs.size() % 2 == 0) ? '&' : ';';
      qs += percent_encode_all(name) + '=' + percent_encode_all(value);
    }
    FUZZ_CHECK(parse_query_string(qs) == args);
  }
  return 0;
}

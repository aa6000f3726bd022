// Writing JSON text. Strings are escaped per RFC 8259 and invalid UTF-8 is
// replaced by U+FFFD, so whatever a handler puts in, the output parses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace brubeck {

// Appends s as a quoted, escaped JSON string.
void append_json_string(std::string& out, std::string_view s);
std::string json_string(std::string_view s);
// Appends a number; non-finite doubles become null (JSON has no NaN).
void append_json_number(std::string& out, double v);
void append_json_number(std::string& out, std::int64_t v);

}  // namespace brubeck

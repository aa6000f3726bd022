// The fast path of the JSON header decoder: Mongrel2's headers exactly as it
// writes them, `{"name":"value",...}` with each value a string or an array of
// strings, no whitespace and no escapes. Anything else (whitespace, an
// escape, a control character, a number, a nested object, bad UTF-8) is left
// to simdjson's full parse, so this accepts a strict subset of what simdjson
// accepts and yields the same headers for it.
#pragma once

#include <string_view>
#include <vector>

#include "brubeck/pipeline/codec.hpp"

namespace brubeck::detail {

// True when `json` has that shape and is valid UTF-8: its headers (views into
// `json`) are appended to `out`. False otherwise; `out` may then hold some
// of them, and the caller parses `json` in full.
bool scan_flat_json_headers(std::string_view json, std::vector<Header>& out);

}  // namespace brubeck::detail

// Mongrel2's JSON headers, read the way Mongrel2 writes them. Mongrel2 1.12
// builds that "JSON" by hand: it escapes only `"` and `\` and passes every
// other header byte through raw, so a value may hold control bytes and
// bytes that are not UTF-8 (RFC 9110 field values are octets; old browsers,
// proxies and bots send Latin-1). A strict JSON parser rejects such frames,
// and rejecting them left clients without any answer, so header values here
// are bytes, taken as they came.
//
// Two readers, one dialect: a fast path for Mongrel2's exact shape
// (`{"name":"value",...}`, each value a string or an array of strings, no
// whitespace, no escapes) and a full one that also takes JSON whitespace
// between tokens and JSON escapes (`\"`, `\\`, `\/`, `\b\f\n\r\t`, `\uXXXX`;
// a lone surrogate becomes U+FFFD). For valid JSON both yield exactly what a
// JSON parser yields.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "brubeck/pipeline/codec.hpp"

namespace brubeck::detail {

// The fast path. True when `json` has Mongrel2's exact shape: its headers
// (views into `json`) are appended to `out`. False otherwise; `out` may then
// hold some of them, and the caller clears it and takes the full reader.
bool scan_flat_json_headers(std::string_view json, std::vector<Header>& out);

// The full reader. Appends the headers to `out` and returns true, or
// returns false for anything that is not an object of strings and arrays of
// strings. Names and values without escapes are views into `json`; escaped
// ones are unescaped into a buffer of json.size() bytes, allocated into
// `unescaped` on the first escape.
bool parse_json_headers(std::string_view json, std::vector<Header>& out,
                        std::shared_ptr<char[]>& unescaped);

}  // namespace brubeck::detail

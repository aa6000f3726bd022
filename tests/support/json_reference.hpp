// simdjson's DOM view of Mongrel2's JSON headers, flattened as FrameDecoder
// flattens them (an array gives one header per item): the reference that the
// decoder's fast path is checked against, by the unit tests and the fuzzer.
#pragma once

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace brubeck::test_support {

using HeaderPairs = std::vector<std::pair<std::string, std::string>>;

// nullopt when `json` is invalid or not an object of strings and arrays of
// strings.
inline std::optional<HeaderPairs> reference_json_headers(std::string_view json) {
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(json);
  simdjson::dom::object object;
  if (parser.parse(padded).get_object().get(object) != simdjson::SUCCESS) return std::nullopt;
  HeaderPairs out;
  for (auto field : object) {
    std::string_view text;
    if (field.value.get_string().get(text) == simdjson::SUCCESS) {
      out.emplace_back(field.key, text);
      continue;
    }
    simdjson::dom::array items;
    if (field.value.get_array().get(items) != simdjson::SUCCESS) return std::nullopt;
    for (auto item : items) {
      if (item.get_string().get(text) != simdjson::SUCCESS) return std::nullopt;
      out.emplace_back(field.key, text);
    }
  }
  return out;
}

}  // namespace brubeck::test_support

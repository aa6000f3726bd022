// Mongrel2 request frames with JSON headers (FrameDecoder, simdjson on-demand).
//
// Each input is decoded three ways (and, as headers, compared with
// simdjson's DOM wherever that reads it: the decoder also takes Mongrel2's
// raw bytes, which a strict parser rejects, but must agree on valid JSON): as a whole frame (the
// seeds are captured frames), as the JSON headers of an otherwise valid frame (so mutations of the
// JSON need not fix up the netstring length), and as the body of a METHOD "JSON" socket message
// (disconnect detection). Every successful decode is checked by FrameChecker: views inside the
// input, agreement with peek_route_key and with a fresh decoder, and a round trip of the headers
// through both header formats.
#include <cstddef>
#include <cstdint>
#include <string>

#include "../support/json_reference.hpp"
#include "brubeck/pipeline/detail/flat_json.hpp"
#include "frame_checks.hpp"

using namespace brubeck;
using namespace brubeck::fuzz;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static FrameChecker checker;
  const std::string_view input = as_view(data, size);

  checker.check(input);

  // Whatever simdjson reads, both readers read the same way; the fast path
  // agrees with the full reader wherever it takes the input.
  std::vector<Header> fast;
  const bool took_fast = detail::scan_flat_json_headers(input, fast);
  std::vector<Header> full;
  std::shared_ptr<char[]> unescaped;
  const bool took_full = detail::parse_json_headers(input, full, unescaped);
  if (took_fast) {
    FUZZ_CHECK(took_full && full.size() == fast.size());
    for (std::size_t i = 0; i < fast.size(); ++i)
      FUZZ_CHECK(full[i].name == fast[i].name && full[i].value == fast[i].value);
  }
  if (const auto reference = test_support::reference_json_headers(input)) {
    FUZZ_CHECK(took_full && reference->size() == full.size());
    for (std::size_t i = 0; i < full.size(); ++i)
      FUZZ_CHECK((*reference)[i].first == full[i].name && (*reference)[i].second == full[i].value);
  }

  const std::string sender = "14ba3fad-a4e3-42f8-8ab4-4a60a8c33806";
  const ExactCopy as_headers(sender + " 2 /some/path " + netstring(input) + "0:,");
  const DecodeError h = checker.check(as_headers.view());
  FUZZ_CHECK(h == DecodeError::ok || h == DecodeError::bad_headers);

  const ExactCopy as_message(sender + " 1 @* " + netstring(R"({"METHOD":"JSON"})") +
                             netstring(input));
  const DecodeError e = checker.check(as_message.view());
  FUZZ_CHECK(e == DecodeError::ok);
  return 0;
}

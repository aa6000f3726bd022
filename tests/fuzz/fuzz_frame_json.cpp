// Mongrel2 request frames with JSON headers (FrameDecoder, simdjson on-demand).
//
// Each input is decoded three ways: as a whole frame (the seeds are captured
// frames), as the JSON headers of an otherwise valid frame (so mutations of
// the JSON need not fix up the netstring length), and as the body of a
// METHOD "JSON" socket message (disconnect detection). Every successful
// decode is checked by FrameChecker: views inside the input, agreement with
// peek_route_key and with a fresh decoder, and a round trip of the headers
// through both header formats.
#include <cstddef>
#include <cstdint>
#include <string>

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

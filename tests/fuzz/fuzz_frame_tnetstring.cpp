// Mongrel2 request frames with tnetstring headers (protocol='tnetstring':
// the headers netstring ends in '}' and holds a dict of strings or lists of
// strings).
//
// Each input is decoded as a whole frame (the seeds are captured frames) and
// as the tnetstring dict of an otherwise valid frame, so mutations inside the
// dict need not fix up the outer length. FrameChecker checks every success.
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

  const ExactCopy as_dict("b6b2b9a6-2a5d-4c6e-9d0b-3b7f1f0a1c11 1 /tnet " + netstring(input, '}') +
                          "0:,");
  const DecodeError e = checker.check(as_dict.view());
  // The envelope is valid: only the dict can be wrong.
  FUZZ_CHECK(e == DecodeError::ok || e == DecodeError::bad_headers);
  return 0;
}

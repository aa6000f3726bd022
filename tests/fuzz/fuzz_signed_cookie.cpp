// Signed cookies (CookieSigner, HMAC-SHA256 via libsodium).
//
// 1. The whole input as a signed value for "session": verify must never
//    crash, and when it accepts, the input must be exactly what sign() writes
//    for that value and timestamp (one valid signature per value: no
//    malleability in the base64, the timestamp or the hex).
// 2. A name and a value derived from the input, signed at a fixed time:
//    - verify gives the value back, within max_age and clock skew;
//    - it fails past max_age, too far in the future, under another name (also
//      one that moves a '|'-separated tail of the name into the value), and
//      with a signer that lacks the secret;
//    - flipping any single byte (several positions tried per input) never
//      verifies.
// A violated property traps.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "brubeck/handlers/cookies.hpp"
#include "fuzz_common.hpp"

using namespace brubeck;
using namespace brubeck::fuzz;
using namespace std::chrono;

namespace {

const system_clock::time_point kNow{seconds{1'700'000'000}};
constexpr seconds kMaxAge{86400};

// Rotation as deployed: the current secret first, the previous one second.
const CookieSigner& current() {
  static const CookieSigner s(
      {"fuzz-secret-current-0123456789", "fuzz-secret-previous-0123456789"});
  return s;
}
const CookieSigner& previous_only() {
  static const CookieSigner s({"fuzz-secret-previous-0123456789"});
  return s;
}
const CookieSigner& unrelated() {
  static const CookieSigner s({"some-other-app-secret-0123456789"});
  return s;
}

// The timestamp field of a signed value: what sign() must have been given.
std::optional<system_clock::time_point> stamp_of(std::string_view signed_value) {
  const auto last = signed_value.rfind('|');
  if (last == std::string_view::npos) return std::nullopt;
  const auto mid = signed_value.rfind('|', last == 0 ? 0 : last - 1);
  if (mid == std::string_view::npos || mid >= last) return std::nullopt;
  long long s = 0;
  for (char c : signed_value.substr(mid + 1, last - mid - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    s = s * 10 + (c - '0');
  }
  return system_clock::time_point{seconds{s}};
}

void check_arbitrary(std::string_view input) {
  for (const CookieSigner* signer : {&current(), &previous_only(), &unrelated()}) {
    const auto v = signer->verify("session", input, kMaxAge, kNow);
    if (!v) continue;
    const auto t = stamp_of(input);
    FUZZ_CHECK(t.has_value());
    // Whichever secret accepted it, one of the signers' first secrets made it.
    const bool canonical = current().sign("session", *v, *t) == input ||
                           previous_only().sign("session", *v, *t) == input ||
                           unrelated().sign("session", *v, *t) == input;
    FUZZ_CHECK(canonical);
  }
}

void check_round_trip(std::string_view input) {
  if (input.size() < 3) return;
  const std::size_t name_len = static_cast<unsigned char>(input[0]) % 24;
  const auto age = seconds{static_cast<unsigned char>(input[1]) * 400};  // up to ~28 h
  input.remove_prefix(2);
  const std::string name(input.substr(0, name_len));
  const std::string value(input.substr(std::min(name_len, input.size())));
  const system_clock::time_point signed_at = kNow - age;

  const std::string token = current().sign(name, value, signed_at);
  FUZZ_CHECK(is_cookie_value(token));
  FUZZ_CHECK(stamp_of(token) == signed_at);

  const auto back = current().verify(name, token, kMaxAge, kNow);
  FUZZ_CHECK(back.has_value() == (age <= kMaxAge));
  if (back) FUZZ_CHECK(*back == value);
  // Age limits, at the edges.
  FUZZ_CHECK(current().verify(name, token, age, kNow) == value);
  if (age.count() > 0) FUZZ_CHECK(!current().verify(name, token, age - seconds{1}, kNow));
  FUZZ_CHECK(current().verify(name, token, seconds{0}, signed_at - CookieSigner::max_clock_skew) ==
             value);
  FUZZ_CHECK(!current().verify(name, token, kMaxAge,
                               signed_at - CookieSigner::max_clock_skew - seconds{1}));

  // Bound to the name, and to the secret.
  FUZZ_CHECK(!current().verify(name + "x", token, age, kNow));
  if (!name.empty()) FUZZ_CHECK(!current().verify(name.substr(1), token, age, kNow));
  // The MAC covers "name|base64|seconds" and names may hold '|' (it is a
  // token character): moving the tail of the name into the value must not
  // verify under the shorter name.
  for (std::size_t p = name.find('|'), k = 0; p != std::string::npos && k < 4;
       p = name.find('|', p + 1), ++k)
    FUZZ_CHECK(!current().verify(name.substr(0, p), name.substr(p + 1) + "|" + token, age, kNow));
  FUZZ_CHECK(!previous_only().verify(name, token, age, kNow));
  FUZZ_CHECK(!unrelated().verify(name, token, age, kNow));
  // A value signed with the previous secret still verifies after rotation.
  FUZZ_CHECK(current().verify(name, previous_only().sign(name, value, signed_at), age, kNow) ==
             value);

  // No single flipped byte verifies. Positions spread over the token (start,
  // timestamp, separators and signature included), the flip taken from the
  // input so every bit pattern gets tried.
  const std::size_t n = token.size();
  const std::size_t positions[] = {0,      n - 1, n - 64, n - 65,
                                   n - 66, n / 2, n / 3,  (value.size() * 7919) % n};
  for (std::size_t k = 0; k < std::size(positions); ++k) {
    const std::size_t i = positions[k] % n;
    unsigned char flip = static_cast<unsigned char>(value.empty() ? 1 : value[k % value.size()]);
    if (flip == 0) flip = 0x20;
    std::string altered = token;
    altered[i] = static_cast<char>(altered[i] ^ flip);
    FUZZ_CHECK(!current().verify(name, altered, age, kNow));
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ExactCopy copy(as_view(data, size));
  check_arbitrary(copy.view());
  check_round_trip(copy.view());
  return 0;
}

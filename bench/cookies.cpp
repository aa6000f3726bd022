// Cookies: parsing a realistic Cookie header (five cookies, one of them
// signed), signing and verifying a session value, and building a Set-Cookie
// value with every common attribute.
#include <benchmark/benchmark.h>

#include "brubeck/handlers/cookies.hpp"

namespace {
using std::chrono::seconds;
using std::chrono::system_clock;

const system_clock::time_point kNow{seconds(1700000000)};
const brubeck::CookieSigner& signer() {
  static const brubeck::CookieSigner s(
      std::vector<std::string>{"bench-secret-0123456789abcdef", "older-secret-0123456789abcdef"});
  return s;
}
}  // namespace

static void BM_parse_cookie_header(benchmark::State& state) {
  const std::string header =
      "_ga=GA1.2.1234567890.1700000000; "
      "session=eyJ1c2VyIjo0Miwicm9sZSI6ImFkbWluIn0|1700000000|"
      "ab9b032344d39dce8a3df3ca730c2eb71e54d77c2fb4a614c41b0473450d0930; "
      "lang=en-US; theme=\"dark\"; csrftoken=Xk3P9qLm2ZrT7vWb8NcYd4Fg6Hj1Ks5A";
  for (auto _ : state) benchmark::DoNotOptimize(brubeck::parse_cookie_header(header));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * header.size()));
}
BENCHMARK(BM_parse_cookie_header);

static void BM_sign(benchmark::State& state) {
  const std::string value = R"({"user":42,"role":"admin"})";
  for (auto _ : state) benchmark::DoNotOptimize(signer().sign("session", value, kNow));
}
BENCHMARK(BM_sign);

static void BM_verify(benchmark::State& state) {
  // Arg 0: signed with the first secret; 1: with the second (one extra HMAC).
  const auto value = R"({"user":42,"role":"admin"})";
  std::string signed_value;
  if (state.range(0) == 0)
    signed_value = signer().sign("session", value, kNow);
  else
    signed_value = brubeck::CookieSigner(std::vector<std::string>{"older-secret-0123456789abcdef"})
                       .sign("session", value, kNow);
  for (auto _ : state)
    benchmark::DoNotOptimize(signer().verify("session", signed_value, seconds(3600), kNow));
}
BENCHMARK(BM_verify)->Arg(0)->Arg(1);

static void BM_format_set_cookie(benchmark::State& state) {
  brubeck::CookieOptions options;
  options.max_age = seconds(86400);
  options.expires = kNow + seconds(86400);
  options.domain = "example.com";
  options.secure = true;
  options.http_only = true;
  options.same_site = "Lax";
  const std::string value = signer().sign("session", R"({"user":42,"role":"admin"})", kNow);
  for (auto _ : state)
    benchmark::DoNotOptimize(brubeck::format_set_cookie("session", value, options));
}
BENCHMARK(BM_format_set_cookie);

BENCHMARK_MAIN();

// multipart/form-data parsing against its floor: a bare memchr pass for '\r'
// over the same bytes, which is how the parser looks for delimiters. The
// target is a 1 MiB upload at no more than 3x that floor.
#include "brubeck/handlers/multipart.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

using brubeck::FormPart;
using brubeck::MultipartError;

constexpr std::size_t kMiB = 1u << 20;
// What Firefox sends; Chrome's "----WebKitFormBoundary..." is of similar length.
constexpr std::string_view kBoundary = "---------------------------735323031399963166993862150";

std::string content_type() { return "multipart/form-data; boundary=" + std::string(kBoundary); }

// Uniform random bytes: a '\r' every 256 bytes on average, the worst usual
// case for a CR-driven search (compressed and media uploads look like this).
std::string random_bytes(std::size_t n) {
  std::mt19937_64 rng(2718);
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<std::size_t>(8, n - i));
  }
  return s;
}

void append_field(std::string& body, std::string_view name, std::string_view value) {
  body += "--";
  body += kBoundary;
  body += "\r\nContent-Disposition: form-data; name=\"";
  body += name;
  body += "\"\r\n\r\n";
  body += value;
  body += "\r\n";
}

std::string form_with_file(std::string_view file) {
  std::string body;
  append_field(body, "title", "holiday pictures");
  append_field(body, "album", "2024");
  body += "--";
  body += kBoundary;
  body +=
      "\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"photos.tar.gz\"\r\n"
      "Content-Type: application/gzip\r\n\r\n";
  body += file;
  body += "\r\n--";
  body += kBoundary;
  body += "--\r\n";
  return body;
}

std::string small_form() {
  std::string body;
  append_field(body, "name", "ada");
  append_field(body, "email", "ada@example.org");
  append_field(body, "comment", "Take five.");
  body += "--";
  body += kBoundary;
  body += "--\r\n";
  return body;
}

void BM_memchr_scan_1MiB(benchmark::State& state) {
  const std::string body = random_bytes(kMiB);
  for (auto _ : state) {
    std::size_t count = 0;
    const char* p = body.data();
    const char* const end = p + body.size();
    while (const void* hit = std::memchr(p, '\r', static_cast<std::size_t>(end - p))) {
      ++count;
      p = static_cast<const char*>(hit) + 1;
    }
    benchmark::DoNotOptimize(count);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_memchr_scan_1MiB);

void parse_loop(benchmark::State& state, const std::string& body, std::size_t parts_expected) {
  const std::string type = content_type();
  std::vector<FormPart> parts;
  if (brubeck::parse_multipart(type, body, parts) != MultipartError::ok ||
      parts.size() != parts_expected) {
    state.SkipWithError("benchmark body does not parse");
    return;
  }
  for (auto _ : state) {
    const MultipartError e = brubeck::parse_multipart(type, body, parts);
    benchmark::DoNotOptimize(e);
    benchmark::DoNotOptimize(parts.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}

void BM_parse_multipart_1MiB(benchmark::State& state) {
  parse_loop(state, form_with_file(random_bytes(kMiB)), 3);
}
BENCHMARK(BM_parse_multipart_1MiB);

void BM_parse_multipart_small(benchmark::State& state) { parse_loop(state, small_form(), 3); }
BENCHMARK(BM_parse_multipart_small);

}  // namespace

BENCHMARK_MAIN();

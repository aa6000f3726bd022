// Codec micro benchmarks: what one request costs to decode and one reply to
// encode, against which the reactor's per-message budget is judged.
#include "brubeck/pipeline/codec.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using brubeck::DecodeError;
using brubeck::Frame;
using brubeck::FrameDecoder;

std::string netstring(std::string_view payload, char tag = ',') {
  return std::to_string(payload.size()) + ":" + std::string(payload) + tag;
}

// A browser GET as Mongrel2 1.12.2 frames it: browser headers lower case,
// Mongrel2's own upper case and last; about 500 bytes in all.
std::string json_frame() {
  const std::string headers =
      R"({"PATH":"/api/items/42","x-forwarded-for":"127.0.0.1",)"
      R"("accept":"text/html,application/xhtml+xml,*/*;q=0.8",)"
      R"("accept-encoding":"gzip, deflate, br",)"
      R"("cookie":["session=3f2a9c81d4e0b7aa","theme=dark"],)"
      R"("user-agent":"Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",)"
      R"("host":"127.0.0.1:6767","METHOD":"GET","VERSION":"HTTP/1.1",)"
      R"("URI":"/api/items/42?full=1","QUERY":"full=1","PATTERN":"/api",)"
      R"("URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"})";
  return "14ba3fad-a4e3-42f8-8ab4-4a60a8c33806 1234 /api/items/42 " + netstring(headers) +
         netstring("");
}

// The frame captured from Mongrel2 1.12.2 with protocol='tnetstring', verbatim.
constexpr std::string_view kTnetFrame =
    "b6b2b9a6-2a5d-4c6e-9d0b-3b7f1f0a1c11 1 /tnet "
    "231:11:REMOTE_ADDR,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTERN,5:/tnet,3:URI,"
    "5:/tnet,7:VERSION,8:HTTP/1.1,4:PATH,5:/tnet,4:host,14:127.0.0.1:6767,10:user-agent,11:curl/"
    "7.88.1,6:accept,3:*/*,15:x-forwarded-for,9:127.0.0.1,}0:,";

void decode_loop(benchmark::State& state, std::string_view bytes) {
  FrameDecoder decoder;
  Frame frame;
  if (decoder.decode(bytes, frame) != DecodeError::ok) {
    state.SkipWithError("benchmark frame does not decode");
    return;
  }
  for (auto _ : state) {
    const DecodeError e = decoder.decode(bytes, frame);
    benchmark::DoNotOptimize(e);
    benchmark::DoNotOptimize(frame.headers.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(bytes.size()));
  state.counters["frame_bytes"] = static_cast<double>(bytes.size());
}

void BM_decode_json_frame(benchmark::State& state) { decode_loop(state, json_frame()); }
BENCHMARK(BM_decode_json_frame);

void BM_decode_tnetstring_frame(benchmark::State& state) { decode_loop(state, kTnetFrame); }
BENCHMARK(BM_decode_tnetstring_frame);

void BM_peek_route_key(benchmark::State& state) {
  const std::string frame = json_frame();
  for (auto _ : state) {
    std::string_view bytes = frame;
    benchmark::DoNotOptimize(bytes);
    auto key = brubeck::peek_route_key(bytes);
    benchmark::DoNotOptimize(key);
  }
}
BENCHMARK(BM_peek_route_key);

// The reply of a hello-world handler: a 13-byte body behind its HTTP head.
void BM_encode_reply(benchmark::State& state) {
  const std::string_view sender = "14ba3fad-a4e3-42f8-8ab4-4a60a8c33806";
  const std::string_view conn_id = "1234";
  const std::string_view response = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";
  for (auto _ : state) {
    std::string reply = brubeck::encode_reply(sender, conn_id, response);
    benchmark::DoNotOptimize(reply.data());
  }
}
BENCHMARK(BM_encode_reply);

}  // namespace

BENCHMARK_MAIN();

// The stall report through real Mongrel2: a handler that computes without
// waiting holds up its whole shard, and the shard says so (route, duration),
// once per burst of stalls.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "harness.hpp"

namespace brubeck::testing {
namespace {

TEST(Stall, AComputingHandlerIsReportedWithItsRoute) {
  Mongrel2Server m2;
  m2.start();
  ChildProcess demo;
  demo.start(binary_path("examples/brubeck_demo"),
             {"--send-spec", m2.send_spec(), "--recv-spec", m2.recv_spec(), "--shards", "1",
              "--demo-faults", "--stall-ms", "100"},
             {});
  wait_for_handler(m2.http_port(), "/", &demo);
  auto r = http_get(m2.http_port(), "/fault/spin?ms=400");
  EXPECT_EQ(r.status, 200);
  // Quick requests are no stall.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(http_get(m2.http_port(), "/shard").status, 200);
  // Logging is asynchronous to our reading: wait for the line (bounded).
  for (int i = 0; i < 250 && count_of(demo.output(), "without waiting") < 1; ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(demo.stop(SIGTERM), 0);
  const auto out = demo.output();
  EXPECT_EQ(count_of(out, "(^/fault/spin$) ran "), 1u) << out;
  EXPECT_EQ(count_of(out, "without waiting"), 1u) << out;
}

}  // namespace
}  // namespace brubeck::testing

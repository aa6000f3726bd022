// One event, one line: a message with line breaks (libpq's errors have
// them) is logged on a single line.
#include "brubeck/pipeline/log.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <sstream>

namespace brubeck {
namespace {

TEST(Log, AMultiLineMessageIsOneLine) {
  configure_logging("info");
  std::ostringstream out;
  auto logger = std::make_shared<spdlog::logger>(
      "one-line-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  spdlog::initialize_logger(logger);  // takes the configured format
  logger->error("query failed: {}", "ERROR:  relation \"x\" does not exist\nLINE 1: select\r\n");
  logger->flush();
  spdlog::drop("one-line-test");
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_NE(text.find(R"(does not exist\nLINE 1: select\r\n)"), std::string::npos) << text;
  EXPECT_NE(text.find(" error "), std::string::npos) << text;
  EXPECT_THROW(configure_logging("loud"), std::invalid_argument);
}

}  // namespace
}  // namespace brubeck

#include "brubeck/pipeline/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace brubeck {

namespace {

// The message with its line breaks written as \n and \r: one event, one
// line, even when a library's error text (libpq's) spans several, so that
// line-based log tools see every event whole.
class OneLineMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const auto text = msg.payload;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text.data()[i];
      if (c == '\n') {
        dest.append(std::string_view("\\n"));
      } else if (c == '\r') {
        dest.append(std::string_view("\\r"));
      } else {
        dest.push_back(c);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<OneLineMessage>();
  }
};

}  // namespace

void configure_logging(std::string_view level) {
  auto lvl = spdlog::level::from_str(std::string(level));
  // from_str maps unknown names to "off", which would hide a typo silently.
  if (lvl == spdlog::level::off && level != "off")
    throw std::invalid_argument("unknown log level '" + std::string(level) + "'");
  spdlog::set_level(lvl);
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<OneLineMessage>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %*");
  spdlog::set_formatter(std::move(formatter));
}

}  // namespace brubeck

#include "brubeck/pipeline/log.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>
#include <string>

namespace brubeck {

void configure_logging(std::string_view level) {
  auto lvl = spdlog::level::from_str(std::string(level));
  // from_str maps unknown names to "off", which would hide a typo silently.
  if (lvl == spdlog::level::off && level != "off")
    throw std::invalid_argument("unknown log level '" + std::string(level) + "'");
  spdlog::set_level(lvl);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");
}

}  // namespace brubeck

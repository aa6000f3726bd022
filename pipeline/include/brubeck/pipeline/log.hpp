// Logging set-up shared by every layer (spdlog underneath): one place that
// decides the format and level, so a bad frame is logged the same way on
// every shard.
#pragma once

#include <string_view>

namespace brubeck {

// Accepts trace, debug, info, warn, error, critical, off; throws
// std::invalid_argument on anything else. Every message is one line: line
// breaks inside it are written as \n and \r.
void configure_logging(std::string_view level);

}  // namespace brubeck

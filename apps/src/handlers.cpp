#include "brubeck/apps/handlers.hpp"

namespace brubeck {

// Out of line: one vtable for each class, emitted here.
PageHandler::~PageHandler() = default;
ApiHandler::~ApiHandler() = default;

}  // namespace brubeck

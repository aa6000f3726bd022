#include "brubeck/apps/handlers.hpp"

#include "brubeck/apps/templates.hpp"
#include "brubeck/handlers/http_error.hpp"

namespace brubeck {

// Out of line: one vtable for each class, emitted here.
PageHandler::~PageHandler() = default;
ApiHandler::~ApiHandler() = default;

void PageHandler::render(std::string_view name, const nlohmann::json& context) {
  std::string page;
  try {
    page = service<Templates>().render(name, context);
  } catch (const TemplateError& e) {
    throw HttpError(500, e.what());  // logged once by Templates::render
  }
  set_body(std::move(page));
  set_header("Content-Type", "text/html; charset=utf-8");
}

}  // namespace brubeck

// The two kinds of handler an application writes on top of the engine:
// PageHandler answers a browser with HTML (templates, a session in a signed
// cookie, CSRF checks on unsafe methods, a missing user sent to the login
// page), ApiHandler answers programs with JSON (a missing user is 401, no
// CSRF check: its clients authenticate each request themselves).
#pragma once

#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "brubeck/handlers/handler.hpp"

namespace brubeck {

class PageHandler : public WebMessageHandler {
 public:
  ~PageHandler() override;

  // The framework's render(), which builds the reply after on_finish.
  using WebMessageHandler::render;
  // Renders the app's template `name` (service<Templates>()) with `context`
  // as this reply's body, text/html. A missing or broken template is a 500
  // (HttpError) after one log line naming it and the position.
  void render(std::string_view name, const nlohmann::json& context);
};

class ApiHandler : public JSONMessageHandler {
 public:
  ~ApiHandler() override;
};

}  // namespace brubeck

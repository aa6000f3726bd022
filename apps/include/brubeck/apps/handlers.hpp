// The two kinds of handler an application writes on top of the engine:
// PageHandler answers a browser with HTML (templates, a session in a signed
// cookie, CSRF checks on unsafe methods, a missing user sent to the login
// page), ApiHandler answers programs with JSON (a missing user is 401, no
// CSRF check: its clients authenticate each request themselves). What they
// share (session, user, login, CSRF token) is in app_handler.hpp.
#pragma once

#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "brubeck/apps/app_handler.hpp"
#include "brubeck/handlers/handler.hpp"

namespace brubeck {

class PageHandler : public detail::AppHandler<WebMessageHandler> {
 public:
  ~PageHandler() override;

  // The framework's render(), which builds the reply after on_finish.
  using detail::AppHandler<WebMessageHandler>::render;
  // Renders the app's template `name` (service<Templates>()) with `context`
  // as this reply's body, text/html. A missing or broken template is a 500
  // (HttpError) after one log line naming it and the position.
  void render(std::string_view name, const nlohmann::json& context);
};

class ApiHandler : public detail::AppHandler<JSONMessageHandler> {
 public:
  ~ApiHandler() override;
};

}  // namespace brubeck

// The two kinds of handler an application writes on top of the engine:
// PageHandler answers a browser with HTML (templates, a session in a signed
// cookie, CSRF checks on unsafe methods, a missing user sent to the login
// page), ApiHandler answers programs with JSON (a missing user is 401, no
// CSRF check: its clients authenticate each request themselves). What they
// share (session, user, login, CSRF token) is in app_handler.hpp.
#pragma once

#include "brubeck/apps/app_handler.hpp"
#include "brubeck/handlers/handler.hpp"

namespace brubeck {

class PageHandler : public detail::AppHandler<WebMessageHandler> {
 public:
  ~PageHandler() override;
};

class ApiHandler : public detail::AppHandler<JSONMessageHandler> {
 public:
  ~ApiHandler() override;
};

}  // namespace brubeck

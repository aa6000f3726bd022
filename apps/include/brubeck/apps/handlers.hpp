// The two kinds of handler an application writes on top of the engine:
// PageHandler answers a browser with HTML (templates, a session in a signed
// cookie, CSRF checks on unsafe methods, a missing user sent to the login
// page), ApiHandler answers programs with JSON (a missing user is 401, no
// CSRF check: its clients authenticate each request themselves).
#pragma once

#include "brubeck/handlers/handler.hpp"

namespace brubeck {

class PageHandler : public WebMessageHandler {
 public:
  ~PageHandler() override;
};

class ApiHandler : public JSONMessageHandler {
 public:
  ~ApiHandler() override;
};

}  // namespace brubeck

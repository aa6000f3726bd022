// Runs one request through the route table and a new handler object, on the
// calling fiber, and returns the reply: no route is 404, a method the route
// lacks is 405 with Allow, an escaping exception is 500 and one log line.
// Throws nothing but Boost's forced_unwind (a fiber being torn down).
#pragma once

#include "brubeck/handlers/request.hpp"
#include "brubeck/handlers/response.hpp"
#include "brubeck/handlers/routes.hpp"
#include "brubeck/handlers/settings.hpp"

namespace brubeck {

struct Dispatched {
  Response response;
  bool include_body = true;  // false for HEAD
};

Dispatched dispatch(const RouteTable& routes, const Request& request,
                    const HandlerSettings& settings);
// With default settings (no cookie secret, default limits).
Dispatched dispatch(const RouteTable& routes, const Request& request);

}  // namespace brubeck

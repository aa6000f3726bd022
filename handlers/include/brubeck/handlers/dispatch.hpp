// Runs one request through the route table and a new handler object, on the
// calling fiber, and returns the reply: no route is 404, a method the route
// lacks is 405 with Allow, an escaping exception is 500 and one log line.
// Throws nothing but Boost's forced_unwind (a fiber being torn down) and
// FiberCancelled (the client disconnected): both mean "send nothing".
#pragma once

#include "brubeck/handlers/request.hpp"
#include "brubeck/handlers/response.hpp"
#include "brubeck/handlers/routes.hpp"
#include "brubeck/handlers/settings.hpp"

namespace brubeck {

struct Dispatched {
  Response response;
  bool include_body = true;  // false for HEAD
  bool sent = false;         // the handler deferred or streamed its reply: send nothing
  bool deferred = false;     // ...and a DeferredReply will finish it later
  // The route that matched (null: none), for per-route metrics. With `sent`,
  // response.status is the status the handler set (bytes unknown here).
  const RouteSpec* route = nullptr;
};

// `channel` carries deferred, streamed and delivered replies; without one
// (unit tests) those handler calls throw std::logic_error.
Dispatched dispatch(const RouteTable& routes, const Request& request,
                    const HandlerSettings& settings, ReplyChannel* channel = nullptr);
// For Mongrel2's upload-start notice: asks the route's handler whether to
// accept an upload of `content_length` bytes. Returns 0 to let it go on
// (nothing is sent), else the status to refuse it with (404, 413...).
int admit_upload(const RouteTable& routes, const Request& request, const HandlerSettings& settings,
                 std::size_t content_length);

// With default settings (no cookie secret, default limits).
Dispatched dispatch(const RouteTable& routes, const Request& request);

}  // namespace brubeck

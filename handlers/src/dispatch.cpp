#include "brubeck/handlers/dispatch.hpp"

#include <spdlog/spdlog.h>
#include <boost/context/detail/exception.hpp>

namespace brubeck {

namespace {
void call_method(MessageHandler& h, Method m) {
  switch (m) {
    case Method::get:
      h.get();
      break;
    case Method::head:
      h.head();
      break;
    case Method::post:
      h.post();
      break;
    case Method::put:
      h.put();
      break;
    case Method::patch:
      h.patch();
      break;
    case Method::delete_:
      h.delete_();
      break;
    case Method::options:
      h.options();
      break;
  }
}

Dispatched run_handler(const RouteMatch& match, const Request& request, Method method) {
  const auto& route = *match.route;
  auto handler = route.factory();
  handler->bind(request, match);
  handler->initialize();
  handler->prepare();
  // A method the route does not list is refused before the handler sees it.
  if (route.methods.has(method))
    call_method(*handler, method);
  else
    handler->unsupported();
  handler->on_finish();
  return {handler->render(), method != Method::head};
}
}  // namespace

Dispatched dispatch(const RouteTable& routes, const Request& request) {
  try {
    auto match = routes.match(request.path());
    if (!match) return {error_response(404), request.method() != "HEAD"};
    auto method = parse_method(request.method());
    if (!method) {
      auto r = error_response(405);
      r.set_header("Allow", match->route->methods.allow_header());
      return {std::move(r), true};
    }
    try {
      auto d = run_handler(*match, request, *method);
      return d;
    } catch (const boost::context::detail::forced_unwind&) {
      throw;
    } catch (const std::exception& e) {
      spdlog::error("{} {} (conn {}): handler failed: {}", request.method(), request.path(),
                    request.conn_id(), e.what());
    } catch (...) {
      spdlog::error("{} {} (conn {}): handler failed with a non-standard exception",
                    request.method(), request.path(), request.conn_id());
    }
    return {error_response(500), *method != Method::head};
  } catch (const boost::context::detail::forced_unwind&) {
    throw;
  } catch (...) {
    // Only allocation failure can get here: answer without allocating much.
    Response r;
    r.status = 500;
    return {std::move(r), true};
  }
}

}  // namespace brubeck

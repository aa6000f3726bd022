#include "brubeck/handlers/dispatch.hpp"

#include <spdlog/spdlog.h>
#include <boost/context/detail/exception.hpp>

#include "brubeck/handlers/http_error.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"

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

using forced_unwind = boost::context::detail::forced_unwind;

// Runs `step`; an HttpError becomes that status, anything else a logged 500.
// Returns false when the request failed (the reply then holds the error).
template <class F>
bool guarded(MessageHandler& h, const Request& request, F&& step) {
  try {
    step();
    return true;
  } catch (const forced_unwind&) {
    throw;
  } catch (const FiberCancelled&) {
    throw;  // the client went away: unwind, send nothing
  } catch (const HttpError& e) {
    spdlog::debug("{} {} (conn {}): {} {}", request.method(), request.path(), request.conn_id(),
                  e.status(), e.what());
    h.response() = Response{};
    h.write_error(e.status());
  } catch (const Timeout& e) {
    // The request's deadline, or a wait's own limit (an upstream too slow).
    spdlog::warn("{} {} (conn {}): 504: {}", request.method(), request.path(), request.conn_id(),
                 e.what());
    h.response() = Response{};
    h.write_error(504);
  } catch (const Unavailable& e) {
    spdlog::warn("{} {} (conn {}): 503: {}", request.method(), request.path(), request.conn_id(),
                 e.what());
    h.response() = Response{};
    h.write_error(503);
  } catch (const std::exception& e) {
    spdlog::error("{} {} (conn {}): handler failed: {}", request.method(), request.path(),
                  request.conn_id(), e.what());
    h.response() = Response{};
    h.write_error(500);
  } catch (...) {
    spdlog::error("{} {} (conn {}): handler failed with a non-standard exception", request.method(),
                  request.path(), request.conn_id());
    h.response() = Response{};
    h.write_error(500);
  }
  return false;
}

const RouteSpec kNoRoute{};
}  // namespace

Dispatched dispatch(const RouteTable& routes, const Request& request,
                    const HandlerSettings& settings, ReplyChannel* channel) {
  const bool is_head = request.method() == "HEAD";
  try {
    auto match = routes.match(request.path());
    auto method = parse_method(request.method());
    if (!match || !method) {
      // Error pages are rendered by a plain handler, so the app's error page
      // applies to 404 and 405 too.
      RouteMatch none{match ? match->route : &kNoRoute, {}, {}};
      WebMessageHandler h;
      h.bind(request, none, settings);
      if (match)
        h.unsupported();
      else
        h.write_error(404);
      return {h.render(), !is_head, false, false, match ? match->route : nullptr};
    }
    // The deadline bounds every wait of this fiber and of its children.
    auto limit = match->route->timeout.value_or(settings.request_timeout);
    if (auto* hub = FiberHub::current(); hub != nullptr) {
      if (limit.count() > 0) hub->set_deadline(hub->self(), Clock::now() + limit);
      hub->set_label(match->route->pattern);  // what a stall report names
    }
    auto handler = match->route->factory();
    handler->bind(request, *match, settings, channel);
    handler->set_route_table(&routes);
    const auto& route = *match->route;
    bool ok = guarded(*handler, request, [&] {
      handler->initialize();
      // A method the route does not list is refused before the handler sees
      // it: 405 whoever asks (no login redirect or CSRF 403 first, as the
      // route table alone decides it).
      if (!route.methods.has(*method)) return handler->unsupported();
      if (!handler->check_request()) return;
      handler->prepare();
      call_method(*handler, *method);
    });
    ok = guarded(*handler, request, [&] { handler->on_finish(); }) && ok;
    if (handler->reply_taken()) {
      // A stream cut short by an error is closed, so the client sees it
      // truncated (no last chunk) instead of a well-formed, wrong reply.
      if (!ok) handler->abort_stream();
      guarded(*handler, request, [&] { handler->finish_stream(); });
      Response sent;
      sent.status = handler->response().status;
      return {std::move(sent), false, true, handler->deferred(), &route};
    }
    Response reply;
    if (!guarded(*handler, request, [&] { reply = handler->render(); }))
      reply = std::move(handler->response());
    return {std::move(reply), *method != Method::head, false, false, &route};
  } catch (const forced_unwind&) {
    throw;
  } catch (const FiberCancelled&) {
    throw;
  } catch (const std::exception& e) {
    // Only a failing error page or allocation failure gets here.
    spdlog::error("{} {} (conn {}): error page failed: {}", request.method(), request.path(),
                  request.conn_id(), e.what());
  } catch (...) {
  }
  return {error_response(500), !is_head};
}

int admit_upload(const RouteTable& routes, const Request& request, const HandlerSettings& settings,
                 std::size_t content_length) {
  auto match = routes.match(request.path());
  if (!match) return 404;
  try {
    auto handler = match->route->factory();
    handler->bind(request, *match, settings);
    return handler->accept_upload(content_length) ? 0 : 413;
  } catch (const forced_unwind&) {
    throw;
  } catch (const HttpError& e) {
    return e.status();
  } catch (const std::exception& e) {
    spdlog::error("{} {} (conn {}): accept_upload failed: {}", request.method(), request.path(),
                  request.conn_id(), e.what());
    return 500;
  }
}

Dispatched dispatch(const RouteTable& routes, const Request& request) {
  static const HandlerSettings defaults;
  return dispatch(routes, request, defaults);
}

}  // namespace brubeck

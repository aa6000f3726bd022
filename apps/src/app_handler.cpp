#include "brubeck/apps/app_handler.hpp"

#include <spdlog/spdlog.h>

#include "brubeck/apps/csrf.hpp"
#include "brubeck/handlers/http_error.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"
#include "brubeck/pipeline/log_limiter.hpp"

namespace brubeck::detail {

namespace {
// One per shard thread: a limiter is not shared between threads.
LogLimiter& refusal_log() {
  thread_local LogLimiter limiter;
  return limiter;
}
}  // namespace

template <class Base>
AppHandler<Base>::~AppHandler() = default;

template <class Base>
Session& AppHandler<Base>::session() {
  if (!session_) session_ = std::make_unique<Session>(*this, this->template service<Sessions>());
  return *session_;
}

template <class Base>
const std::optional<User>& AppHandler<Base>::current_user() {
  if (!user_) user_ = get_current_user();
  return *user_;
}

template <class Base>
std::optional<User> AppHandler<Base>::get_current_user() {
  if (this->template find_service<Sessions>() == nullptr) return std::nullopt;
  if constexpr (is_api)
    if (is_unsafe_method(this->request().method()) && !xsrf_valid(false)) return std::nullopt;
  auto user = session().get("_user");
  if (!user.is_object() || !user["id"].is_number_integer() || !user["name"].is_string())
    return std::nullopt;
  return User{user["id"].template get<std::int64_t>(), user["name"].template get<std::string>()};
}

template <class Base>
void AppHandler<Base>::on_login_required() {
  if constexpr (is_api) {
    this->set_status(401);
    this->add_to_payload("error", "login required");
  } else {
    const auto& req = this->request();
    // A form sent without a session cannot be replayed after a login.
    if (req.method() != "GET" && req.method() != "HEAD") throw HttpError(403, "login required");
    std::string next(req.path());
    if (!req.query_string().empty()) next.append("?").append(req.query_string());
    const auto& login_url = this->template service<Sessions>().login_url;
    if (is_local_path(next))
      this->redirect(login_url + "?next=" + url_encode(next));
    else
      this->redirect(login_url);
  }
}

template <class Base>
LoginOutcome AppHandler<Base>::login(const std::string& name, const std::string& password) {
  auto& users = this->template service<Users>();
  const std::string client(this->request().remote_addr());
  auto verdict = users.throttle().attempt(client, name);
  if (!verdict.allowed) {
    refusal_log().warn("login throttled: client {} account '{}' (retry in {} s)", client, name,
                       verdict.retry_after.count());
    this->set_status(429);
    this->set_header("Retry-After", std::to_string(verdict.retry_after.count()));
    return {LoginOutcome::throttled, std::nullopt, verdict.retry_after};
  }
  // Only this request's fiber waits; the shard serves others meanwhile.
  if (verdict.delay.count() > 0) this_fiber::sleep_for(verdict.delay);
  auto user = users.verify(name, password);
  if (!user) return {LoginOutcome::wrong, std::nullopt, {}};
  users.throttle().succeeded(client, name);
  log_in(*user);
  return {LoginOutcome::ok, user, {}};
}

template <class Base>
void AppHandler<Base>::log_in(const User& user) {
  auto& s = session();
  s.regenerate();
  s["_user"] = {{"id", user.id}, {"name", user.name}};
  user_ = user;
}

template <class Base>
void AppHandler<Base>::logout() {
  session().destroy();
  user_ = std::optional<User>();
}

template <class Base>
std::string AppHandler<Base>::xsrf_token() {
  if (xsrf_secret_.empty()) {
    auto cookie = this->get_cookie(xsrf_cookie_name);
    if (cookie && cookie->size() == 64 && xsrf_token_bytes(*cookie)) {
      xsrf_secret_ = std::move(*cookie);
    } else {
      xsrf_secret_ = new_xsrf_secret();
      CookieOptions options;
      options.same_site = "Lax";  // not HttpOnly: scripts send it as a header
      this->set_cookie(xsrf_cookie_name, xsrf_secret_, options);
    }
  }
  return mask_xsrf_token(xsrf_secret_);
}

template <class Base>
std::string AppHandler<Base>::xsrf_form_html() {
  // The token is hex and '|': nothing to escape.
  return R"(<input type="hidden" name="_xsrf" value=")" + xsrf_token() + R"(">)";
}

template <class Base>
bool AppHandler<Base>::xsrf_valid(bool form) const {
  auto cookie = this->get_cookie(xsrf_cookie_name);
  if (!cookie) return false;
  const auto& req = this->request();
  std::optional<std::string_view> token = req.header("x-xsrftoken");
  if (!token) token = req.header("x-csrftoken");
  if (token) return xsrf_matches(*cookie, *token);
  if (!form) return false;
  return xsrf_matches(*cookie, this->get_argument(xsrf_field_name));
}

template <class Base>
bool AppHandler<Base>::check_request() {
  const auto& req = this->request();
  if (check_xsrf() && is_unsafe_method(req.method()) && !xsrf_valid()) {
    refusal_log().warn("{} {}: 403, XSRF token missing or wrong (client {})", req.method(),
                       req.path(), req.remote_addr());
    throw HttpError(403, "XSRF token missing or wrong");
  }
  if (login_required() && !current_user()) {
    on_login_required();
    return false;
  }
  return true;
}

template <class Base>
Response AppHandler<Base>::render() {
  if (session_) session_->commit();
  return Base::render();
}

template class AppHandler<WebMessageHandler>;
template class AppHandler<JSONMessageHandler>;

}  // namespace brubeck::detail

// What PageHandler and ApiHandler share on top of the engine's handlers: the
// session, the logged-in user, login and logout, the CSRF token, and the
// checks run before prepare() (a required user, the CSRF token on unsafe
// methods). One template for both, so the two cannot drift apart; where
// they differ (a page redirects to the login URL, an API answers 401; a
// page checks CSRF tokens, an API does not) it says so below.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "brubeck/apps/auth.hpp"
#include "brubeck/apps/session.hpp"
#include "brubeck/handlers/handler.hpp"

namespace brubeck {

// What login() says.
struct LoginOutcome {
  enum Kind { ok, wrong, throttled } kind = wrong;
  std::optional<User> user;             // when ok
  std::chrono::seconds retry_after{0};  // when throttled
  explicit operator bool() const noexcept { return kind == ok; }
};

namespace detail {

template <class Base>
class AppHandler : public Base {
 public:
  // ApiHandler's family: no CSRF check, 401 instead of a redirect.
  static constexpr bool is_api = std::is_base_of_v<JSONMessageHandler, Base>;

  ~AppHandler() override;

  // This request's session (the app's Sessions service; std::logic_error,
  // a 500, when it has none). Loaded on first use.
  Session& session();

  // The user this request acts for, or nullopt. get_current_user() decides;
  // asked once per request.
  const std::optional<User>& current_user();
  // The default reads the user login() recorded in the session. For an API,
  // an unsafe request authenticated by the session cookie alone has no user
  // unless it also carries the X-XSRFToken header: a cookie is sent by the
  // browser for any site's form, a header only by this site's scripts.
  virtual std::optional<User> get_current_user();

  // True when the handler needs a user: a page without one is redirected
  // to the login URL with ?next=, an API answered 401. Override to mark a
  // handler class; LoginRequired<H> marks a route.
  virtual bool login_required() const { return false; }
  // What happens when a required user is missing (see above).
  virtual void on_login_required();

  // Checks `password` through the app's Users service, throttled per client
  // and account (see LoginThrottle). On success the session gets a new id
  // and the user; when throttled the status is 429 with Retry-After.
  LoginOutcome login(const std::string& name, const std::string& password);
  // Records `user` as logged in (after a check of the app's own): a new
  // session id, then the user in it.
  void log_in(const User& user);
  // Ends the session (its data, its stored copy, its cookie).
  void logout();

  // Whether unsafe methods must carry the CSRF token: pages yes, APIs no.
  virtual bool check_xsrf() const { return !is_api; }
  // The token for this request's forms (sets the `_xsrf` cookie when the
  // browser has none), masked afresh on each call.
  std::string xsrf_token();
  // <input type="hidden" name="_xsrf" value="..."> for a form.
  std::string xsrf_form_html();

  bool check_request() override;
  // Saves the session (if loaded and changed), then builds the reply.
  Response render() override;

 protected:
  // True when the request carries a token matching its `_xsrf` cookie
  // (from the form field only when `form` is true).
  bool xsrf_valid(bool form = true) const;

 private:
  std::unique_ptr<Session> session_;
  std::optional<std::optional<User>> user_;
  std::string xsrf_secret_;  // the cookie's value, once known or made
};

extern template class AppHandler<WebMessageHandler>;
extern template class AppHandler<JSONMessageHandler>;

}  // namespace detail

// Marks a route as needing a user without touching its class:
// `app.route<LoginRequired<Profile>>("^/profile$")`.
template <class H>
class LoginRequired : public H {
 public:
  using H::H;
  bool login_required() const override { return true; }
};

}  // namespace brubeck

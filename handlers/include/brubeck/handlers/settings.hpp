// What every handler of an application shares, read-only once serving
// starts: the cookie signer, body and upload limits, where Mongrel2 spools
// large uploads, the app-wide error page and the app's services.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "brubeck/handlers/cookies.hpp"
#include "brubeck/handlers/multipart.hpp"
#include "brubeck/handlers/services.hpp"

namespace brubeck {

class WebMessageHandler;

struct HandlerSettings {
  // Signs and checks secure cookies; null when no cookie_secret is set.
  std::shared_ptr<const CookieSigner> cookie_signer;
  std::chrono::seconds secure_cookie_max_age{std::chrono::hours(24 * 31)};
  MultipartLimits multipart;
  std::size_t max_body_bytes = 64 * 1024 * 1024;  // larger bodies: 413
  // Mongrel2's chroot folder, so its upload paths ("/tmp/upload.X") can be
  // opened; and the folder those spool files must lie in.
  std::string mongrel2_chroot;
  std::string upload_store;
  // App-wide error page: fills the handler's reply for `status`. Empty: the
  // built-in short text body.
  std::function<void(WebMessageHandler&, int status)> error_page;
  // Default request deadline (a route may set its own); zero: none.
  std::chrono::milliseconds request_timeout{0};
  // What App::provide was given (templates, session store, ...); never null.
  std::shared_ptr<const Services> services = std::make_shared<Services>();
};

}  // namespace brubeck

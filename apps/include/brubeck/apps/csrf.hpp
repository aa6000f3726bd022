// Cross-site request forgery, Tornado's way: a random token in the `_xsrf`
// cookie, and the same token in every unsafe request (POST, PUT, PATCH,
// DELETE), as the form field `_xsrf` or the header X-XSRFToken (or
// X-CSRFToken). Another site can make the browser send the cookie, but can
// neither read it nor guess it, so it cannot put the token in the request.
//
// PageHandler checks it by default (missing or wrong: 403, logged at most
// once a second); ApiHandler does not, since its clients authenticate each
// request themselves (and an API request authenticated by the session
// cookie alone counts as having no user, see ApiHandler). A page puts
// `xsrf_form_html()` in its forms; a script sends the cookie's value in the
// header.
//
// The token in a page is masked afresh each time (Tornado's version 2:
// "2|mask|token XOR mask", hex), so a compressed page never repeats the same
// secret bytes (BREACH); the cookie's value, sent as is, is accepted too.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace brubeck {

inline constexpr std::string_view xsrf_cookie_name = "_xsrf";
inline constexpr std::string_view xsrf_field_name = "_xsrf";

// A new cookie value: 32 random bytes, hex.
std::string new_xsrf_secret();
// `secret` (a cookie value) masked with fresh random bytes.
std::string mask_xsrf_token(std::string_view secret);
// The 32 bytes a cookie value or a (masked or plain) token stands for, or
// nullopt when it is not one.
std::optional<std::string> xsrf_token_bytes(std::string_view token);
// True when `token` stands for the same secret as `cookie` (compared in
// constant time: sodium_memcmp).
bool xsrf_matches(std::string_view cookie, std::string_view token);
// True for POST, PUT, PATCH and DELETE (and any method not known to be safe).
bool is_unsafe_method(std::string_view method) noexcept;

}  // namespace brubeck

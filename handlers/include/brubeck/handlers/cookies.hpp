// HTTP cookies (RFC 6265): reading the Cookie request header, writing
// Set-Cookie values, and signed cookies. Parsing is lenient, since the header
// comes from any client; writing is strict and throws, so that no name, value
// or attribute can smuggle a CR, LF or ';' into a reply or be silently
// dropped by browsers. Signed cookies carry their own timestamp and are bound
// to their cookie name, so a client can neither forge, replay past max_age,
// nor move a value into another cookie.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace brubeck {

// (name, value) pairs of one Cookie header, in order; a name may repeat
// (browsers send the most specific path first). Pairs are split on ';' with or
// without the space, names and values are trimmed of spaces and tabs, and a
// value in double quotes loses them. Pairs without '=' or whose name is not
// an RFC 6265 token are skipped; values are otherwise kept as sent. Never
// throws except std::bad_alloc. Several Cookie headers: parse each in turn.
std::vector<std::pair<std::string, std::string>> parse_cookie_header(std::string_view header);

// RFC 6265 token: a valid cookie name.
bool is_cookie_name(std::string_view name) noexcept;
// Only cookie-octets: no CTL, space, '"', ',', ';', '\' or non-ASCII byte.
bool is_cookie_value(std::string_view value) noexcept;

struct CookieOptions {
  // Negative means "expire now" and is written as Max-Age=0.
  std::optional<std::chrono::seconds> max_age;
  std::optional<std::chrono::system_clock::time_point> expires;  // years 1601 to 9999
  std::string domain;                                            // empty: host-only cookie
  std::string path = "/";  // empty: no Path attribute; otherwise must start with '/'
  bool secure = false;
  bool http_only = false;
  std::string same_site;  // "", "Strict", "Lax" or "None" (None needs secure)
};

// The value of one Set-Cookie header, attributes in this order: Path, Domain,
// Max-Age, Expires, Secure, HttpOnly, SameSite. Throws std::invalid_argument
// when the name is not a token, the value has a byte outside cookie-octets,
// name + value exceed 4096 bytes (browsers drop such cookies), the domain is
// not a host name, the path has a CTL or ';', SameSite is unknown or None
// without Secure, or a "__Secure-"/"__Host-" name lacks what its prefix
// demands (Secure; for __Host- also Path=/ and no Domain).
std::string format_set_cookie(std::string_view name, std::string_view value,
                              const CookieOptions& options = {});

// A Set-Cookie value that removes the cookie: empty value, Max-Age=0 and an
// Expires in 1970 (for agents that ignore Max-Age). Path and domain must be
// those the cookie was set with, or the browser keeps it. Secure is added to
// prefixed names, whose deletion browsers refuse otherwise.
std::string format_delete_cookie(std::string_view name, std::string_view path = "/",
                                 std::string_view domain = {});

// IMF-fixdate (RFC 9110 §5.6.7), as in "Wed, 21 Oct 2015 07:28:00 GMT".
// Throws std::invalid_argument outside the years 1601 to 9999.
std::string format_http_date(std::chrono::system_clock::time_point t);

// Signs and verifies cookie values with HMAC-SHA256 (libsodium). A signed
// value is cookie-octet safe, so it can go straight into format_set_cookie:
//   base64url(value) '|' unix_seconds '|' hex(HMAC(secret, name|base64url(value)|unix_seconds))
// Several secrets allow rotation: sign() uses the first, verify() accepts any,
// so put a new secret first and drop the old one after the longest max_age.
// Immutable after construction: one signer (or its copies) can serve every
// shard at once.
class CookieSigner {
 public:
  // How far in the future a timestamp may be (clock skew between hosts).
  static constexpr std::chrono::seconds max_clock_skew{300};

  // Throws std::invalid_argument if `secrets` is empty or one is shorter than
  // 16 bytes; std::runtime_error if libsodium cannot initialise. Only keyed
  // HMAC states are kept (wiped when the last copy goes); the signer's own
  // copy of the secrets is wiped at once. Pass them with std::move to leave
  // no other copy behind.
  explicit CookieSigner(std::vector<std::string> secrets);

  // Throws std::invalid_argument if `now` is before 1970.
  std::string sign(
      std::string_view name, std::string_view value,
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;

  // The original value, or nullopt if signed_value is malformed, was signed
  // for another cookie name or with an unknown secret, was altered, is older
  // than max_age, or is dated more than max_clock_skew after now. Never
  // throws on any input (std::bad_alloc aside).
  std::optional<std::string> verify(
      std::string_view name, std::string_view signed_value, std::chrono::seconds max_age,
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;

 private:
  struct Keys;
  // Shared and immutable: copies are cheap. Opaque, to keep <sodium.h> out.
  std::shared_ptr<const Keys> keys_;
};

}  // namespace brubeck

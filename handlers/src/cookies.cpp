#include "brubeck/handlers/cookies.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>

namespace brubeck {

namespace {

// RFC 6265bis limits: longer cookies or attributes are dropped by browsers,
// which is better reported to the developer at once than discovered later.
constexpr std::size_t kMaxNameValue = 4096;
constexpr std::size_t kMaxAttribute = 1024;

std::string_view trim_wsp(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_tchar(unsigned char c) noexcept {
  if (c <= 32 || c >= 127) return false;
  return std::string_view("()<>@,;:\\\"/[]?={}").find(static_cast<char>(c)) ==
         std::string_view::npos;
}

bool is_cookie_octet(unsigned char c) noexcept {
  return c == 0x21 || (c >= 0x23 && c <= 0x2B) || (c >= 0x2D && c <= 0x3A) ||
         (c >= 0x3C && c <= 0x5B) || (c >= 0x5D && c <= 0x7E);
}

bool starts_with_icase(std::string_view s, std::string_view prefix) noexcept {
  if (s.size() < prefix.size()) return false;
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (lower(s[i]) != lower(prefix[i])) return false;
  return true;
}

// A host name or IPv4 address; browsers ignore anything else in Domain.
void check_domain(std::string_view domain) {
  if (domain.size() > kMaxAttribute)
    throw std::invalid_argument("cookie domain longer than 1024 bytes");
  for (unsigned char c : domain) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.';
    if (!ok)
      throw std::invalid_argument(
          "cookie domain may only hold letters, digits, '-' and '.' (got '" + std::string(domain) +
          "')");
  }
}

void check_path(std::string_view path) {
  if (path.size() > kMaxAttribute)
    throw std::invalid_argument("cookie path longer than 1024 bytes");
  // User agents replace a path not starting with '/' by the request's directory.
  if (path.front() != '/') throw std::invalid_argument("cookie path must start with '/'");
  for (unsigned char c : path)
    if (c < 0x20 || c >= 0x7F || c == ';')
      throw std::invalid_argument("cookie path contains a control character, ';' or non-ASCII");
}

void append_2digits(std::string& out, unsigned v) {
  out.push_back(static_cast<char>('0' + v / 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

void append_http_date(std::string& out, std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  static constexpr std::array<const char*, 7> kDays{"Sun", "Mon", "Tue", "Wed",
                                                    "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto day = floor<days>(t);
  year_month_day ymd{day};
  int y = static_cast<int>(ymd.year());
  // RFC 6265's cookie-date parser rejects years before 1601; the format has 4 digits.
  if (y < 1601 || y > 9999)
    throw std::invalid_argument("HTTP dates must fall in the years 1601 to 9999");
  hh_mm_ss hms{floor<seconds>(t - day)};
  out.append(kDays[weekday{day}.c_encoding()]).append(", ");
  append_2digits(out, static_cast<unsigned>(ymd.day()));
  out.push_back(' ');
  out.append(kMonths[static_cast<unsigned>(ymd.month()) - 1]).push_back(' ');
  append_2digits(out, static_cast<unsigned>(y / 100));
  append_2digits(out, static_cast<unsigned>(y % 100));
  out.push_back(' ');
  append_2digits(out, static_cast<unsigned>(hms.hours().count()));
  out.push_back(':');
  append_2digits(out, static_cast<unsigned>(hms.minutes().count()));
  out.push_back(':');
  append_2digits(out, static_cast<unsigned>(hms.seconds().count()));
  out.append(" GMT");
}

constexpr int kBase64 = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
constexpr std::size_t kMacHex = crypto_auth_hmacsha256_BYTES * 2;
// Unix seconds up to year ~33,000: enough, and no overflow when parsing.
constexpr std::size_t kMaxTimestampDigits = 12;

void ensure_sodium() {
  // sodium_init() is itself idempotent and thread-safe; the static only saves
  // the call on every signer construction.
  static const bool ready = sodium_init() >= 0;
  if (!ready) throw std::runtime_error("libsodium: sodium_init() failed");
}

}  // namespace

bool is_cookie_name(std::string_view name) noexcept {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return is_tchar(static_cast<unsigned char>(c));
  });
}

bool is_cookie_value(std::string_view value) noexcept {
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return is_cookie_octet(static_cast<unsigned char>(c)); });
}

std::vector<std::pair<std::string, std::string>> parse_cookie_header(std::string_view header) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(static_cast<std::size_t>(std::count(header.begin(), header.end(), ';')) + 1);
  for (;;) {
    auto semi = header.find(';');
    auto pair = header.substr(0, semi);
    if (auto eq = pair.find('='); eq != std::string_view::npos) {
      auto name = trim_wsp(pair.substr(0, eq));
      auto value = trim_wsp(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      if (is_cookie_name(name)) out.emplace_back(name, value);
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return out;
}

std::string format_http_date(std::chrono::system_clock::time_point t) {
  std::string out;
  out.reserve(29);
  append_http_date(out, t);
  return out;
}

std::string format_set_cookie(std::string_view name, std::string_view value,
                              const CookieOptions& options) {
  if (!is_cookie_name(name))
    throw std::invalid_argument("invalid cookie name '" + std::string(name) +
                                "': must be a non-empty RFC 6265 token");
  if (!is_cookie_value(value))
    throw std::invalid_argument(
        "cookie '" + std::string(name) +
        "' value has a byte outside cookie-octets (control, space, '\"', ',', ';', '\\' or "
        "non-ASCII); encode it first (e.g. base64url)");
  if (name.size() + value.size() > kMaxNameValue)
    throw std::invalid_argument("cookie '" + std::string(name) +
                                "': name and value exceed 4096 bytes");
  if (!options.path.empty()) check_path(options.path);
  if (!options.domain.empty()) check_domain(options.domain);

  std::string_view same_site = options.same_site;
  if (!same_site.empty() && same_site != "Strict" && same_site != "Lax" && same_site != "None")
    throw std::invalid_argument("SameSite must be \"\", \"Strict\", \"Lax\" or \"None\", not \"" +
                                std::string(same_site) + "\"");
  if (same_site == "None" && !options.secure)
    throw std::invalid_argument("cookie '" + std::string(name) +
                                "': SameSite=None requires Secure (browsers reject it otherwise)");

  // Browsers enforce these prefixes (RFC 6265bis §4.1.3) by dropping the cookie.
  bool host_prefix = starts_with_icase(name, "__Host-");
  if ((host_prefix || starts_with_icase(name, "__Secure-")) && !options.secure)
    throw std::invalid_argument("cookie '" + std::string(name) + "': its prefix requires Secure");
  if (host_prefix && (options.path != "/" || !options.domain.empty()))
    throw std::invalid_argument("cookie '" + std::string(name) +
                                "': the __Host- prefix requires Path=/ and no Domain");

  std::string out;
  out.reserve(name.size() + value.size() + options.path.size() + options.domain.size() + 96);
  out.append(name).push_back('=');
  out.append(value);
  if (!options.path.empty()) out.append("; Path=").append(options.path);
  if (!options.domain.empty()) out.append("; Domain=").append(options.domain);
  if (options.max_age)
    out.append("; Max-Age=")
        .append(std::to_string(std::max<std::int64_t>(options.max_age->count(), 0)));
  if (options.expires) {
    out.append("; Expires=");
    append_http_date(out, *options.expires);
  }
  if (options.secure) out.append("; Secure");
  if (options.http_only) out.append("; HttpOnly");
  if (!same_site.empty()) out.append("; SameSite=").append(same_site);
  return out;
}

std::string format_delete_cookie(std::string_view name, std::string_view path,
                                 std::string_view domain) {
  CookieOptions options;
  options.max_age = std::chrono::seconds(0);
  options.expires = std::chrono::system_clock::time_point{};  // 1970-01-01
  options.path = path;
  options.domain = domain;
  options.secure = starts_with_icase(name, "__Host-") || starts_with_icase(name, "__Secure-");
  return format_set_cookie(name, "", options);
}

struct CookieSigner::Keys {
  // HMAC states already keyed (inner and outer pads absorbed): each MAC
  // starts from a copy, which saves hashing the key twice per call.
  std::vector<crypto_auth_hmacsha256_state> states;

  Keys() = default;
  Keys(const Keys&) = delete;
  Keys& operator=(const Keys&) = delete;
  ~Keys() {
    if (!states.empty())
      sodium_memzero(states.data(), states.size() * sizeof(crypto_auth_hmacsha256_state));
  }
};

namespace {

// HMAC(key, name '|' payload), where payload is "base64url|seconds".
void mac(const crypto_auth_hmacsha256_state& keyed, std::string_view name, std::string_view payload,
         unsigned char (&out)[crypto_auth_hmacsha256_BYTES]) {
  crypto_auth_hmacsha256_state st = keyed;
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(name.data()),
                                name.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>("|"), 1);
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(payload.data()),
                                payload.size());
  crypto_auth_hmacsha256_final(&st, out);
  sodium_memzero(&st, sizeof st);
}

}  // namespace

CookieSigner::CookieSigner(std::vector<std::string> secrets) {
  struct Wipe {
    std::vector<std::string>& s;
    ~Wipe() {
      for (auto& x : s) sodium_memzero(x.data(), x.size());
    }
  } wipe{secrets};

  if (secrets.empty()) throw std::invalid_argument("CookieSigner needs at least one secret");
  for (std::size_t i = 0; i < secrets.size(); ++i)
    if (secrets[i].size() < 16)
      throw std::invalid_argument("CookieSigner secret #" + std::to_string(i) +
                                  " is shorter than 16 bytes");
  ensure_sodium();

  auto keys = std::make_shared<Keys>();
  keys->states.resize(secrets.size());
  for (std::size_t i = 0; i < secrets.size(); ++i)
    crypto_auth_hmacsha256_init(&keys->states[i],
                                reinterpret_cast<const unsigned char*>(secrets[i].data()),
                                secrets[i].size());
  keys_ = std::move(keys);
}

std::string CookieSigner::sign(std::string_view name, std::string_view value,
                               std::chrono::system_clock::time_point now) const {
  auto seconds = std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
  if (seconds < 0) throw std::invalid_argument("CookieSigner::sign: time before 1970");

  const std::size_t b64_size = sodium_base64_ENCODED_LEN(value.size(), kBase64);  // with NUL
  std::string out;
  out.reserve(b64_size + kMaxTimestampDigits + kMacHex + 2);
  out.resize(b64_size);
  // libsodium wants a non-null input pointer even for zero bytes.
  static constexpr unsigned char kNothing = 0;
  sodium_bin2base64(
      out.data(), b64_size,
      value.empty() ? &kNothing : reinterpret_cast<const unsigned char*>(value.data()),
      value.size(), kBase64);
  out.resize(b64_size - 1);
  out.push_back('|');
  out.append(std::to_string(seconds));

  unsigned char tag[crypto_auth_hmacsha256_BYTES];
  mac(keys_->states.front(), name, out, tag);
  char hex[kMacHex + 1];
  sodium_bin2hex(hex, sizeof hex, tag, sizeof tag);
  out.push_back('|');
  out.append(hex, kMacHex);
  return out;
}

std::optional<std::string> CookieSigner::verify(std::string_view name,
                                                std::string_view signed_value,
                                                std::chrono::seconds max_age,
                                                std::chrono::system_clock::time_point now) const {
  auto last = signed_value.rfind('|');
  if (last == std::string_view::npos) return std::nullopt;
  auto payload = signed_value.substr(0, last);
  auto signature = signed_value.substr(last + 1);
  if (signature.size() != kMacHex) return std::nullopt;
  auto mid = payload.rfind('|');
  if (mid == std::string_view::npos) return std::nullopt;
  auto encoded = payload.substr(0, mid);
  auto stamp = payload.substr(mid + 1);

  // Only what sign() writes: digits, no sign, no leading zero.
  if (stamp.empty() || stamp.size() > kMaxTimestampDigits || (stamp[0] == '0' && stamp.size() > 1))
    return std::nullopt;
  std::int64_t signed_at = 0;
  for (char c : stamp) {
    if (c < '0' || c > '9') return std::nullopt;
    signed_at = signed_at * 10 + (c - '0');
  }
  // The timestamp is not secret, so checking it before the MAC leaks nothing.
  auto now_s = std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
  if (signed_at - now_s > max_clock_skew.count()) return std::nullopt;
  if (now_s - signed_at > max_age.count()) return std::nullopt;

  bool authentic = false;
  unsigned char tag[crypto_auth_hmacsha256_BYTES];
  char hex[kMacHex + 1];
  for (const auto& keyed : keys_->states) {
    mac(keyed, name, payload, tag);
    sodium_bin2hex(hex, sizeof hex, tag, sizeof tag);
    // Comparing the hex text rejects upper-case variants too, so each value
    // has exactly one valid signature.
    if (sodium_memcmp(hex, signature.data(), kMacHex) == 0) {
      authentic = true;
      break;
    }
  }
  if (!authentic) return std::nullopt;

  std::string value(encoded.size() / 4 * 3 + 3, '\0');
  std::size_t decoded = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(value.data()), value.size(),
                        encoded.data(), encoded.size(), nullptr, &decoded, &end, kBase64) != 0 ||
      end != encoded.data() + encoded.size())
    return std::nullopt;
  value.resize(decoded);
  return value;
}

}  // namespace brubeck

#include "brubeck/apps/csrf.hpp"

#include <sodium.h>

#include <stdexcept>

namespace brubeck {

namespace {

constexpr std::size_t kBytes = 32;

void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) throw std::runtime_error("libsodium: sodium_init() failed");
}

std::string to_hex(const unsigned char* bytes, std::size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes, n);
  out.pop_back();
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() != kBytes * 2) return std::nullopt;
  std::string out(kBytes, '\0');
  std::size_t n = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(),
                     hex.size(), nullptr, &n, &end) != 0 ||
      n != kBytes || end != hex.data() + hex.size())
    return std::nullopt;
  return out;
}

}  // namespace

std::string new_xsrf_secret() {
  ensure_sodium();
  unsigned char bytes[kBytes];
  randombytes_buf(bytes, sizeof bytes);
  return to_hex(bytes, sizeof bytes);
}

std::string mask_xsrf_token(std::string_view secret) {
  auto raw = xsrf_token_bytes(secret);
  if (!raw) throw std::invalid_argument("not an XSRF secret");
  ensure_sodium();
  unsigned char mask[kBytes], masked[kBytes];
  randombytes_buf(mask, sizeof mask);
  for (std::size_t i = 0; i < kBytes; ++i)
    masked[i] = static_cast<unsigned char>((*raw)[i]) ^ mask[i];
  return "2|" + to_hex(mask, kBytes) + "|" + to_hex(masked, kBytes);
}

std::optional<std::string> xsrf_token_bytes(std::string_view token) {
  if (!token.starts_with("2|")) return from_hex(token);
  token.remove_prefix(2);
  auto bar = token.find('|');
  if (bar == std::string_view::npos) return std::nullopt;
  auto mask = from_hex(token.substr(0, bar));
  auto masked = from_hex(token.substr(bar + 1));
  if (!mask || !masked) return std::nullopt;
  for (std::size_t i = 0; i < kBytes; ++i) (*masked)[i] ^= (*mask)[i];
  return masked;
}

bool xsrf_matches(std::string_view cookie, std::string_view token) {
  auto a = xsrf_token_bytes(cookie);
  auto b = xsrf_token_bytes(token);
  if (!a || !b) return false;
  return sodium_memcmp(a->data(), b->data(), kBytes) == 0;
}

bool is_unsafe_method(std::string_view method) noexcept {
  return !(method == "GET" || method == "HEAD" || method == "OPTIONS");
}

}  // namespace brubeck

#include "brubeck/handlers/digest.hpp"

#include <sodium.h>

#include <stdexcept>

namespace brubeck {

std::string sha256_hex(std::string_view data) {
  static const bool ready = sodium_init() >= 0;
  if (!ready) throw std::runtime_error("libsodium failed to initialise");
  unsigned char hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(hash, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
  return std::string(hex, crypto_hash_sha256_BYTES * 2);
}

}  // namespace brubeck

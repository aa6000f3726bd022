// Message digests for handlers (upload checksums, ETags), from libsodium so
// no hand-written crypto enters the tree.
#pragma once

#include <string>
#include <string_view>

namespace brubeck {

// SHA-256 of `data` as 64 lower-case hex digits.
std::string sha256_hex(std::string_view data);

}  // namespace brubeck

// Shared by the fuzz targets: quiet logging, an invariant check that crashes
// (so libFuzzer saves the input), and exact-size copies of derived inputs.
#pragma once

#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

// A violated property is a finding: trap, so libFuzzer reports a crash and
// writes the input out. Kept a macro so the stack trace names the line.
#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) {       \
      __builtin_trap();  \
    }                    \
  } while (0)

namespace brubeck::fuzz {

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Nothing the library might log should reach the fuzzer's output.
inline void quiet() { spdlog::set_level(spdlog::level::off); }

// A heap copy of exactly s.size() bytes: a read one past the end trips ASan,
// which a std::string (NUL terminator, spare capacity) would hide.
class ExactCopy {
 public:
  explicit ExactCopy(std::string_view s)
      : size_(s.size()), bytes_(std::make_unique<char[]>(s.size() == 0 ? 1 : s.size())) {
    if (size_ != 0) std::memcpy(bytes_.get(), s.data(), size_);
  }
  std::string_view view() const { return {bytes_.get(), size_}; }

 private:
  std::size_t size_;
  std::unique_ptr<char[]> bytes_;
};

// Is `inner` a view into `outer` (or empty)?
inline bool within(std::string_view inner, std::string_view outer) {
  if (inner.empty()) return true;
  const auto b = reinterpret_cast<std::uintptr_t>(outer.data());
  const auto i = reinterpret_cast<std::uintptr_t>(inner.data());
  return i >= b && i + inner.size() <= b + outer.size();
}

}  // namespace brubeck::fuzz

// HTTP methods as a small bit set, so a route can say which it answers and
// the 405 reply can list them in Allow.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace brubeck {

enum class Method : std::uint8_t {
  get = 1 << 0,
  head = 1 << 1,
  post = 1 << 2,
  put = 1 << 3,
  patch = 1 << 4,
  delete_ = 1 << 5,
  options = 1 << 6,
};

class MethodSet {
 public:
  constexpr MethodSet() = default;
  constexpr MethodSet(std::initializer_list<Method> ms) {
    for (auto m : ms) bits_ |= static_cast<std::uint8_t>(m);
  }
  constexpr bool has(Method m) const noexcept { return bits_ & static_cast<std::uint8_t>(m); }
  constexpr MethodSet& add(Method m) noexcept {
    bits_ |= static_cast<std::uint8_t>(m);
    return *this;
  }
  constexpr bool empty() const noexcept { return bits_ == 0; }
  // "GET, HEAD, OPTIONS": the value of an Allow header.
  std::string allow_header() const;

 private:
  std::uint8_t bits_ = 0;
};

// "GET" → Method::get; nullopt for anything else (methods are case-sensitive).
std::optional<Method> parse_method(std::string_view name) noexcept;
std::string_view method_name(Method m) noexcept;

}  // namespace brubeck

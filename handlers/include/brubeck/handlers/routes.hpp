// The route table: regular expressions (RE2, so Brubeck's `(?P<name>...)`
// patterns port unchanged) tried in order against the path, first match wins.
// Each shard compiles its own table once at start and only reads it after.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "brubeck/handlers/handler.hpp"
#include "brubeck/handlers/methods.hpp"

namespace brubeck {

using HandlerFactory = std::function<std::unique_ptr<MessageHandler>()>;
using RouteFunction = std::function<void(WebMessageHandler&)>;

// What the application declares; App copies these into every shard.
struct RouteSpec {
  std::string pattern;
  MethodSet methods;  // what the route answers (OPTIONS is always answered)
  HandlerFactory factory;
  std::string name;
};

struct RouteMatch {
  const RouteSpec* route = nullptr;
  std::vector<std::string> args;                            // every group, by position
  std::vector<std::pair<std::string, std::string>> kwargs;  // named groups
};

// Methods a handler class implements, found at compile time: `&H::get` names
// MessageHandler's member unless some class from H up overrides it.
template <class H>
MethodSet methods_of() {
  static_assert(std::is_base_of_v<MessageHandler, H>);
  using Fn = void (MessageHandler::*)();
  MethodSet m;
  if constexpr (!std::is_same_v<decltype(&H::get), Fn>) m.add(Method::get).add(Method::head);
  if constexpr (!std::is_same_v<decltype(&H::head), Fn>) m.add(Method::head);
  if constexpr (!std::is_same_v<decltype(&H::post), Fn>) m.add(Method::post);
  if constexpr (!std::is_same_v<decltype(&H::put), Fn>) m.add(Method::put);
  if constexpr (!std::is_same_v<decltype(&H::patch), Fn>) m.add(Method::patch);
  if constexpr (!std::is_same_v<decltype(&H::delete_), Fn>) m.add(Method::delete_);
  m.add(Method::options);
  return m;
}

template <class H, class... Args>
RouteSpec class_route(std::string pattern, Args... ctor_args) {
  return RouteSpec{std::move(pattern),
                   methods_of<H>(),
                   [=] { return std::unique_ptr<MessageHandler>(new H(ctor_args...)); },
                   {}};
}

// A function route: `fn` runs on a WebMessageHandler for each listed method.
RouteSpec function_route(std::string pattern, MethodSet methods, RouteFunction fn);

class RouteTable {
 public:
  // Compiles every pattern; throws std::invalid_argument naming a bad one.
  explicit RouteTable(std::vector<RouteSpec> specs);
  ~RouteTable();
  RouteTable(RouteTable&&) noexcept;

  // The first route whose pattern matches at the start of `path`.
  std::optional<RouteMatch> match(std::string_view path) const;
  std::size_t size() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace brubeck

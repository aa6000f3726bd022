// The route table: regular expressions (RE2, so Brubeck's `(?P<name>...)`
// patterns port unchanged) tried in order against the path, first match wins.
// Each shard compiles its own table once at start and only reads it after.
#pragma once

#include <cstdint>
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
  std::string name;  // what RouteTable::url_for knows the route by; empty = unnamed
  // This route's request deadline, instead of the app's request_timeout;
  // zero: none.
  std::optional<std::chrono::milliseconds> timeout;

  // `class_route<User>(R"(^/user/(\d+)$)").named("user")`
  RouteSpec named(std::string route_name) && {
    name = std::move(route_name);
    return std::move(*this);
  }
  RouteSpec& named(std::string route_name) & {
    name = std::move(route_name);
    return *this;
  }
  RouteSpec with_timeout(std::chrono::milliseconds limit) && {
    timeout = limit;
    return std::move(*this);
  }
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
                   {},
                   std::nullopt};
}

// A function route: `fn` runs on a WebMessageHandler for each listed method.
RouteSpec function_route(std::string pattern, MethodSet methods, RouteFunction fn);

// Arguments for RouteTable::url_for. A braced list with two or more strings
// fits both vectors, so spell the type: `url_for("post", UrlKwargs{{"id", "7"}})`.
using UrlArgs = std::vector<std::string>;
using UrlKwargs = std::vector<std::pair<std::string, std::string>>;

struct RouteTableOptions {
  // A lookup first narrows the table to the routes whose literal prefix (the
  // text before the first operator) starts the path. Up to this many (at most
  // 32) are tried one by one: RE2 turns down a wrong one in ~15 ns, and
  // `^/about$` is a string comparison. With more, one pass of a combined
  // matcher over all patterns (RE2::Set, a few hundred ns whatever the table
  // size) names the first that matches.
  std::size_t try_max = 8;
  // Memory budget of the combined matcher in bytes, 0 = sized from the table.
  // If it cannot compile within it, lookups with many candidates try the
  // routes in turn (correct, only slower); tests shrink it to get there.
  std::int64_t set_max_mem = 0;
};

class RouteTable {
 public:
  // Compiles every pattern; throws std::invalid_argument naming a bad one, or
  // a route name given twice.
  explicit RouteTable(std::vector<RouteSpec> specs);
  RouteTable(std::vector<RouteSpec> specs, const RouteTableOptions& options);
  ~RouteTable();
  RouteTable(RouteTable&&) noexcept;

  // The first route whose pattern matches at the start of `path`.
  std::optional<RouteMatch> match(std::string_view path) const;
  std::size_t size() const noexcept;
  // The position of `route` (a RouteMatch's) in this table; size() for a
  // route of another table.
  std::size_t index_of(const RouteSpec* route) const noexcept;

  // Reverse routing: the path of the route named `route_name`, built from its
  // pattern: leading '^' and trailing '$' dropped, escaped characters
  // unescaped (`\.` is '.'), each capture group replaced by an argument, by
  // position or by group name. Arguments are percent-encoded, every byte but
  // RFC 3986's unreserved ones, '/' included: a group stands for one value,
  // not a subtree. Throws std::invalid_argument for an unknown name; missing,
  // extra or (by name) unnamed arguments; a pattern with no single path
  // (alternation, quantifiers, classes, escapes like `\d` or non-capturing
  // groups outside the capture groups, a capture group inside another); or an
  // argument the route would not hand back unchanged (`(\d+)` given "x").
  // The check is against this route alone: an earlier route that also
  // matches the URL would still take it.
  std::string url_for(std::string_view route_name) const;
  std::string url_for(std::string_view route_name, const std::vector<std::string>& args) const;
  std::string url_for(std::string_view route_name,
                      const std::vector<std::pair<std::string, std::string>>& kwargs) const;

  struct LookupStats {
    bool combined = false;        // the combined matcher compiled (tables above try_max)
    std::uint64_t fallbacks = 0;  // lookups it gave up on (out of memory), served one by one
  };
  LookupStats lookup_stats() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace brubeck

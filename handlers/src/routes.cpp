#include "brubeck/handlers/routes.hpp"

#include <re2/re2.h>

#include <stdexcept>

namespace brubeck {

namespace {
class FunctionHandler final : public WebMessageHandler {
 public:
  explicit FunctionHandler(const RouteFunction* fn) : fn_(fn) {}
  // The dispatcher has already checked the method against the route's set.
  void get() override { (*fn_)(*this); }
  void post() override { (*fn_)(*this); }
  void put() override { (*fn_)(*this); }
  void patch() override { (*fn_)(*this); }
  void delete_() override { (*fn_)(*this); }

 private:
  const RouteFunction* fn_;
};
}  // namespace

RouteSpec function_route(std::string pattern, MethodSet methods, RouteFunction fn) {
  if (methods.has(Method::get)) methods.add(Method::head);
  methods.add(Method::options);
  auto shared = std::make_shared<const RouteFunction>(std::move(fn));
  return RouteSpec{std::move(pattern),
                   methods,
                   [shared] { return std::make_unique<FunctionHandler>(shared.get()); },
                   {}};
}

struct RouteTable::Impl {
  struct Compiled {
    RouteSpec spec;
    std::unique_ptr<RE2> re;
    std::vector<std::string> group_names;  // by group index - 1; "" when unnamed
  };
  std::vector<Compiled> routes;
};

RouteTable::RouteTable(std::vector<RouteSpec> specs) : impl_(std::make_unique<Impl>()) {
  RE2::Options opts;
  opts.set_log_errors(false);
  for (auto& spec : specs) {
    auto re = std::make_unique<RE2>(spec.pattern, opts);
    if (!re->ok())
      throw std::invalid_argument("bad route pattern '" + spec.pattern + "': " + re->error());
    std::vector<std::string> names(static_cast<std::size_t>(re->NumberOfCapturingGroups()));
    for (const auto& [name, index] : re->NamedCapturingGroups())
      names[static_cast<std::size_t>(index - 1)] = name;
    impl_->routes.push_back({std::move(spec), std::move(re), std::move(names)});
  }
}

RouteTable::~RouteTable() = default;
RouteTable::RouteTable(RouteTable&&) noexcept = default;

std::size_t RouteTable::size() const noexcept { return impl_->routes.size(); }

std::optional<RouteMatch> RouteTable::match(std::string_view path) const {
  // Brubeck used re.match: anchored at the start, not at the end.
  re2::StringPiece groups[16];
  for (const auto& r : impl_->routes) {
    auto n = std::min<std::size_t>(r.group_names.size() + 1, std::size(groups));
    if (!r.re->Match(re2::StringPiece(path.data(), path.size()), 0, path.size(), RE2::ANCHOR_START,
                     groups, static_cast<int>(n)))
      continue;
    RouteMatch m;
    m.route = &r.spec;
    for (std::size_t i = 1; i < n; ++i) {
      std::string value(groups[i].data() ? groups[i].data() : "", groups[i].size());
      if (!r.group_names[i - 1].empty()) m.kwargs.emplace_back(r.group_names[i - 1], value);
      m.args.push_back(std::move(value));
    }
    return m;
  }
  return std::nullopt;
}

}  // namespace brubeck

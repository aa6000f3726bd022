// Checks RouteTable::match against the plain definition: the first route, in
// table order, whose RE2 matches at the start of the path (Brubeck's
// re.match), with every group by position and the named ones by name.
// Shared by the fixed-table and the fuzzed-pattern route targets.
#pragma once

#include <re2/re2.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "brubeck/handlers/routes.hpp"
#include "fuzz_common.hpp"

namespace brubeck::fuzz {

struct ExpectedMatch {
  std::size_t index;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> kwargs;
};

class RouteOracle {
 public:
  explicit RouteOracle(const std::vector<std::string>& patterns) {
    RE2::Options opts;
    opts.set_log_errors(false);
    for (const auto& p : patterns) {
      res_.push_back(std::make_unique<RE2>(p, opts));
      const RE2& re = *res_.back();
      ok_ = ok_ && re.ok();
      std::vector<std::string> names(re.ok() ? re.NumberOfCapturingGroups() : 0);
      if (re.ok())
        for (const auto& [name, index] : re.NamedCapturingGroups()) names[index - 1] = name;
      names_.push_back(std::move(names));
    }
  }

  bool ok() const { return ok_; }

  std::optional<ExpectedMatch> match(std::string_view path) const {
    for (std::size_t i = 0; i < res_.size(); ++i) {
      const RE2& re = *res_[i];
      const std::size_t n = names_[i].size() + 1;
      std::vector<re2::StringPiece> groups(n);
      if (!re.Match(re2::StringPiece(path.data(), path.size()), 0, path.size(), RE2::ANCHOR_START,
                    groups.data(), static_cast<int>(n)))
        continue;
      ExpectedMatch m{i, {}, {}};
      for (std::size_t g = 1; g < n; ++g) {
        // A group that took no part gives "", as in the table.
        std::string value(groups[g].data() ? groups[g].data() : "", groups[g].size());
        // Captures lie within the path.
        if (groups[g].data()) FUZZ_CHECK(within({groups[g].data(), groups[g].size()}, path));
        if (!names_[i][g - 1].empty()) m.kwargs.emplace_back(names_[i][g - 1], value);
        m.args.push_back(std::move(value));
      }
      return m;
    }
    return std::nullopt;
  }

 private:
  std::vector<std::unique_ptr<RE2>> res_;
  std::vector<std::vector<std::string>> names_;
  bool ok_ = true;
};

// Route i is named "r<i>", so a match says which route it is.
inline std::vector<RouteSpec> specs_for(const std::vector<std::string>& patterns) {
  std::vector<RouteSpec> specs;
  for (std::size_t i = 0; i < patterns.size(); ++i)
    specs.push_back(RouteSpec{patterns[i], MethodSet{Method::get}, nullptr, "r" + std::to_string(i),
                              std::nullopt});
  return specs;
}

inline std::size_t index_of(const RouteMatch& m) {
  return static_cast<std::size_t>(std::stoul(m.route->name.substr(1)));
}

inline void check_match(const RouteTable& table, const RouteOracle& oracle, std::string_view path) {
  const auto got = table.match(path);
  const auto want = oracle.match(path);
  FUZZ_CHECK(got.has_value() == want.has_value());
  if (!got) return;
  FUZZ_CHECK(got->route != nullptr);
  FUZZ_CHECK(index_of(*got) == want->index);
  FUZZ_CHECK(got->args == want->args);
  FUZZ_CHECK(got->kwargs == want->kwargs);
}

// Reverse routing of a match: when url_for accepts the arguments, the URL it
// builds leads to that route or to an earlier one that also matches it.
inline void check_url_for(const RouteTable& table, const RouteMatch& m) {
  const std::size_t index = index_of(m);
  std::string url;
  try {
    url = table.url_for(m.route->name, m.args);
  } catch (const std::invalid_argument&) {
    return;  // not reversible, or an argument the route would not hand back
  }
  const auto back = table.match(url);
  FUZZ_CHECK(back.has_value());
  FUZZ_CHECK(index_of(*back) <= index);
  if (index_of(*back) == index) {
    // Percent-encoding changes arguments with reserved bytes; plain ones
    // come back as they were.
    for (std::size_t i = 0; i < m.args.size(); ++i) {
      bool plain = true;
      for (char c : m.args[i])
        plain = plain && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                          (c >= 'A' && c <= 'Z') || c == '-' || c == '.' || c == '_' || c == '~');
      if (plain) FUZZ_CHECK(back->args[i] == m.args[i]);
    }
  }
}

}  // namespace brubeck::fuzz

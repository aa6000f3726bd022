// RouteTable::match on arbitrary paths, over a fixed table of realistic
// patterns (named groups, literal prefixes shared by several routes, routes
// with no literal prefix, alternation, case-insensitive flags, \Q...\E).
//
// The same table is built four ways, so every lookup strategy is exercised:
// the defaults (candidates by literal prefix, the combined RE2::Set when
// there are too many), try_max 0 (always the combined set), try_max 32 (never
// it), and try_max 0 with a tiny set memory budget (the fallback). Each must
// give what a plain loop over the RE2s gives: the first route matching at the
// start of the path, with its groups (which lie within the path). A match is
// also reversed with url_for where the route allows it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "route_checks.hpp"

using namespace brubeck;
using namespace brubeck::fuzz;

namespace {

const std::vector<std::string>& patterns() {
  static const std::vector<std::string> p = {
      R"(^/$)",
      R"(^/about$)",
      R"(^/brubeck)",
      R"(^/api/v1/users/?$)",
      R"(^/api/v1/users/(?P<user_id>\d+)$)",
      R"(^/api/v1/users/(?P<user_id>\d+)/posts/(?P<post_id>\d+)$)",
      R"(^/api/v1/users/(?P<user_id>\d+)/(?P<action>follow|unfollow)$)",
      R"(^/api/v1/search$)",
      R"(^/api/v(?P<version>[12])/status$)",
      R"(^/api/)",
      R"(^/blog/(?P<year>\d{4})/(?P<month>\d{2})/(?P<slug>[\w-]+)/?$)",
      R"(^/blog/tag/(?P<tag>[^/]+)$)",
      R"(^/static/(?P<path>.+\.(?:css|js|png|jpg))$)",
      R"(^/files/(.*)$)",
      R"(^/user/(\d+)$)",
      R"(^/fun/(?P<name>[^/]+)$)",
      R"((?i)^/Admin/(?P<section>[a-z]+)$)",
      R"(\A/q\Q.+*\E/(\w+)\z)",
      R"(^/a$|^/b$)",
      R"(^/items/?$)",
      R"(^/d/\d+$)",
      R"(^/(?P<lang>[a-z]{2})(?:-(?P<region>[A-Z]{2}))?/docs/(?P<page>[\w/-]*)$)",
      R"(^/upload(?:/(?P<kind>small|large))?$)",
      R"(.*\.php$)",
  };
  return p;
}

struct Tables {
  RouteOracle oracle{patterns()};
  std::vector<RouteTable> tables;

  Tables() {
    FUZZ_CHECK(oracle.ok());
    RouteTableOptions defaults;
    RouteTableOptions set_always;
    set_always.try_max = 0;
    RouteTableOptions set_never;
    set_never.try_max = 32;
    RouteTableOptions starved;
    starved.try_max = 0;
    starved.set_max_mem = 1 << 12;
    for (const auto& opt : {defaults, set_always, set_never, starved})
      tables.emplace_back(specs_for(patterns()), opt);
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Tables t;
  const ExactCopy path(as_view(data, size));
  for (const RouteTable& table : t.tables) check_match(table, t.oracle, path.view());
  if (const auto m = t.tables[0].match(path.view())) check_url_for(t.tables[0], *m);
  return 0;
}

// RouteTable with the patterns themselves fuzzed: the table narrows each
// lookup by a literal prefix it reads out of every pattern's source, and
// answers patterns that are nothing but that literal by a string comparison,
// so a misread pattern routes a path wrongly. This checks the table against
// a plain loop over the RE2s.
//
// Input: lines. Those before the first empty line are patterns (at most 12),
// the lines after it are paths (at most 8); each path is looked up in three
// tables built with different lookup options: try_max 2 (candidates by
// literal prefix, or the combined RE2::Set past two), try_max 0 (always the
// set) and a set starved of memory (the fallback). Pattern
// sets RE2 rejects are skipped, after checking that the table rejects them
// too. Every route is named, so the url_for parser reads every pattern too.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "route_checks.hpp"

using namespace brubeck;
using namespace brubeck::fuzz;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = as_view(data, size);
  std::vector<std::string> patterns;
  std::vector<std::string> paths;
  bool in_paths = false;
  while (!input.empty()) {
    const std::size_t nl = input.find('\n');
    const std::string_view line = input.substr(0, nl);
    input = nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1);
    if (!in_paths && line.empty()) {
      in_paths = true;
    } else if (!in_paths) {
      if (patterns.size() == 12) return 0;
      patterns.emplace_back(line);
    } else {
      if (paths.size() == 8) break;
      paths.emplace_back(line);
    }
  }
  if (patterns.empty()) return 0;

  const RouteOracle oracle(patterns);
  if (!oracle.ok()) {
    bool threw = false;
    try {
      RouteTable table(specs_for(patterns));
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    FUZZ_CHECK(threw);
    return 0;
  }

  RouteTableOptions defaults;
  defaults.try_max = 2;  // small tables: still reach the combined set
  RouteTableOptions set_always;
  set_always.try_max = 0;
  RouteTableOptions starved;
  starved.try_max = 0;
  starved.set_max_mem = 1 << 12;
  std::vector<RouteTable> tables;
  for (const auto& opt : {defaults, set_always, starved})
    tables.emplace_back(specs_for(patterns), opt);

  for (const auto& p : paths) {
    const ExactCopy path(p);
    for (const RouteTable& table : tables) check_match(table, oracle, path.view());
    if (const auto m = tables[0].match(path.view())) check_url_for(tables[0], *m);
  }
  // The pattern texts themselves as paths: literal routes match their own text.
  for (const auto& p : patterns) {
    const ExactCopy path(p);
    for (const RouteTable& table : tables) check_match(table, oracle, path.view());
  }
  return 0;
}

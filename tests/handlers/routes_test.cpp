// RouteTable: lookup through each of its paths (literal-prefix candidates,
// the combined RE2::Set, and the one-by-one scan it falls back to) against a
// plain RE2 loop, and reverse routing with url_for.
#include <gtest/gtest.h>
#include <re2/re2.h>

#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "brubeck/handlers/routes.hpp"

namespace brubeck {
namespace {

class Nop : public WebMessageHandler {
 public:
  void get() override {}
};

// Every way a lookup can go, for the same routes.
struct Mode {
  const char* name;
  RouteTableOptions options;
  bool combined;  // expected RouteTable::lookup_stats().combined
};

const Mode kModes[] = {
    {"default", {}, true},
    {"set only", {.try_max = 0, .set_max_mem = 0}, true},
    // A budget this small cannot compile the set: every lookup scans.
    {"scan", {.try_max = 0, .set_max_mem = 1024}, false},
};

// Route i is named "r<i>" so a match says which route it is.
std::string route_name(std::size_t i) {
  std::string name = "r";  // not "r" + ...: GCC 12 warns falsely (-Wrestrict)
  name += std::to_string(i);
  return name;
}

std::vector<RouteSpec> specs_of(const std::vector<std::string>& patterns) {
  std::vector<RouteSpec> specs;
  for (std::size_t i = 0; i < patterns.size(); ++i)
    specs.push_back(class_route<Nop>(patterns[i]).named(route_name(i)));
  return specs;
}

// What Brubeck's Python did: re.match in declaration order, first one wins.
struct Expected {
  std::size_t route;
  std::vector<std::string> args;
};
std::optional<Expected> reference(const std::vector<std::string>& patterns, std::string_view path) {
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    RE2 re(patterns[i]);
    int n = re.NumberOfCapturingGroups();
    std::vector<re2::StringPiece> groups(static_cast<std::size_t>(n) + 1);
    if (!re.Match(re2::StringPiece(path.data(), path.size()), 0, path.size(), RE2::ANCHOR_START,
                  groups.data(), n + 1))
      continue;
    Expected e{i, {}};
    for (int g = 1; g <= n; ++g) e.args.emplace_back(groups[g].data(), groups[g].size());
    return e;
  }
  return std::nullopt;
}

void expect_same(const RouteTable& t, const std::vector<std::string>& patterns,
                 std::string_view path, const char* mode) {
  auto want = reference(patterns, path);
  auto got = t.match(path);
  ASSERT_EQ(got.has_value(), want.has_value()) << mode << ": '" << path << "'";
  if (!want) return;
  EXPECT_EQ(got->route->name, route_name(want->route)) << mode << ": '" << path << "'";
  EXPECT_EQ(got->args, want->args) << mode << ": '" << path << "'";
}

TEST(RouteLookup, FirstMatchWinsInALargeTable) {
  std::vector<std::string> patterns;
  for (int i = 0; i < 1000; ++i) patterns.push_back("^/r" + std::to_string(i) + R"(/(\d+)$)");
  // Several later routes also match "/r999/5"; the lowest index must win.
  patterns[300] = R"(^/r99(\d)/(?P<n>\d))";
  patterns[500] = R"(^/r9)";
  patterns[700] = R"(^/(?P<all>.*)$)";
  patterns[100] = R"(^/r999/(\d+)x$)";  // earlier, but does not match
  for (const auto& mode : kModes) {
    RouteTable t(specs_of(patterns), mode.options);
    EXPECT_EQ(t.lookup_stats().combined, mode.combined) << mode.name;
    auto m = t.match("/r999/5");
    ASSERT_TRUE(m) << mode.name;
    EXPECT_EQ(m->route->name, "r300") << mode.name;
    EXPECT_EQ(m->args, (std::vector<std::string>{"9", "5"})) << mode.name;
    ASSERT_EQ(m->kwargs.size(), 1u) << mode.name;
    EXPECT_EQ(m->kwargs[0], (std::pair<std::string, std::string>{"n", "5"})) << mode.name;
    m = t.match("/r12/34");
    ASSERT_TRUE(m) << mode.name;
    EXPECT_EQ(m->route->name, "r12") << mode.name;
    EXPECT_EQ(m->args, std::vector<std::string>{"34"}) << mode.name;
    // Nothing before 700 takes it, and 700 takes everything.
    m = t.match("/zzz");
    ASSERT_TRUE(m) << mode.name;
    EXPECT_EQ(m->route->name, "r700") << mode.name;
    for (const char* path : {"/r999/5", "/r9", "/r999/5x", "/r1/1", "/r0/", "", "/"})
      expect_same(t, patterns, path, mode.name);
    EXPECT_EQ(t.lookup_stats().fallbacks, 0u) << mode.name;
  }
}

// A match's position in its table (the metrics' route label), in every
// lookup mode; a route of another table has none.
TEST(RouteLookup, IndexOfAMatch) {
  std::vector<std::string> patterns;
  for (int i = 0; i < 1000; ++i) patterns.push_back("^/r" + std::to_string(i) + R"(/(\d+)$)");
  for (const auto& mode : kModes) {
    RouteTable t(specs_of(patterns), mode.options);
    for (int i : {0, 1, 417, 999}) {
      auto m = t.match("/r" + std::to_string(i) + "/7");
      ASSERT_TRUE(m) << mode.name;
      EXPECT_EQ(t.index_of(m->route), static_cast<std::size_t>(i)) << mode.name;
    }
    RouteTable other(specs_of({"^/r1/"}));
    EXPECT_EQ(t.index_of(other.match("/r1/2")->route), t.size()) << mode.name;
    EXPECT_EQ(t.index_of(nullptr), t.size()) << mode.name;
  }
}

TEST(RouteLookup, MissInALargeTable) {
  std::vector<std::string> patterns;
  for (int i = 0; i < 1000; ++i) patterns.push_back("^/r" + std::to_string(i) + R"(/(\d+)$)");
  for (const auto& mode : kModes) {
    RouteTable t(specs_of(patterns), mode.options);
    EXPECT_FALSE(t.match("/r7/x")) << mode.name;
    EXPECT_FALSE(t.match("/r1000/1")) << mode.name;
    EXPECT_FALSE(t.match("/")) << mode.name;
    EXPECT_FALSE(t.match("")) << mode.name;
  }
}

TEST(RouteLookup, GroupsByPositionAndName) {
  std::string many = "^/many/";
  for (int i = 0; i < 20; ++i) many += "(.)";  // more groups than the stack buffer
  std::vector<std::string> patterns = {
      R"(^/blog/(?P<year>\d{4})/(\d\d)/(?P<slug>[\w-]+)$)",
      R"(^/opt/(a)?(b)$)",  // a group that takes no part reads as ""
      many,
      "^/x$",
      "^/y$",
      "^/z$",
  };
  for (const auto& mode : kModes) {
    RouteTable t(specs_of(patterns), mode.options);
    auto m = t.match("/blog/2024/05/take-five");
    ASSERT_TRUE(m) << mode.name;
    EXPECT_EQ(m->args, (std::vector<std::string>{"2024", "05", "take-five"})) << mode.name;
    EXPECT_EQ(m->kwargs, (std::vector<std::pair<std::string, std::string>>{{"year", "2024"},
                                                                           {"slug", "take-five"}}))
        << mode.name;
    m = t.match("/opt/b");
    ASSERT_TRUE(m) << mode.name;
    EXPECT_EQ(m->args, (std::vector<std::string>{"", "b"})) << mode.name;
    m = t.match("/many/abcdefghijklmnopqrst");
    ASSERT_TRUE(m) << mode.name;
    ASSERT_EQ(m->args.size(), 20u) << mode.name;
    EXPECT_EQ(m->args[19], "t") << mode.name;
    m = t.match("/y");
    ASSERT_TRUE(m) << mode.name;
    EXPECT_TRUE(m->args.empty()) << mode.name;
  }
}

TEST(RouteLookup, AnchoredAtTheStartOnly) {
  std::vector<std::string> patterns = {
      "/brubeck$", "/brubeck", R"((\d+))", "^/a$", "^/b$", "^/c$",
  };
  for (const auto& mode : kModes) {
    RouteTable t(specs_of(patterns), mode.options);
    auto m = t.match("/brubeck");
    ASSERT_TRUE(m) << mode.name;
    EXPECT_EQ(m->route->name, "r0") << mode.name;
    m = t.match("/brubeckish");  // not anchored at the end
    ASSERT_TRUE(m) << mode.name;
    EXPECT_EQ(m->route->name, "r1") << mode.name;
    EXPECT_FALSE(t.match("/x/brubeck")) << mode.name;  // nor found further in
    m = t.match("123abc");
    ASSERT_TRUE(m) << mode.name;
    EXPECT_EQ(m->args, std::vector<std::string>{"123"}) << mode.name;
    EXPECT_FALSE(t.match("abc123")) << mode.name;
  }
}

// Patterns whose literal prefix is easy to get wrong: each lookup path must
// agree with the plain RE2 loop.
TEST(RouteLookup, TrickyPrefixesAgreeWithRe2) {
  std::vector<std::string> patterns = {
      R"(^/ab?c$)",       R"(^/a{2}x$)",  R"(^/b{,2}$)",        R"(\Q/q.\E(\d)$)",
      R"((?i)/CaSe$)",    R"(^/é?z$)",    R"(^/alt$|^/other$)", R"(^/d\.txt$)",
      R"(^/e\$)",         R"(\A/f\z)",    R"(^/g(?:h|i)$)",     R"(^/j[kl]$)",
      R"(^/m.$)",         R"(^/n\d$)",    R"(^/p*$)",           R"(^/s(?i)T$)",
      R"(^/lazy??$)",     R"(^/dup$)",    R"(^/dup$)",          R"(^/pre)",
      R"(^/pre/longer$)", R"(^/pre/lon)", R"(^/(\w+)/(\w+)$)",  R"(/literal-only)",
      R"(^/exact$)",      R"(^/exact/$)", R"(^/sp ace$)",       R"(^/brace{$)",
  };
  std::vector<std::string> paths = {
      "/ac",          "/abc",    "/abbc",    "/aax",
      "/ax",          "/b{,2}",  "/b",       "/q.1",
      "/qx1",         "/case",   "/CASE",    "/z",
      "/éz",          "/ééz",    "/alt",     "/other",
      "/d.txt",       "/dxtxt",  "/e$",      "/e",
      "/f",           "/fx",     "/gh",      "/gi",
      "/gj",          "/jk",     "/jm",      "/mX",
      "/n5",          "/",       "/ppp",     "/st",
      "/sT",          "/ST",     "/lazy",    "/laz",
      "/dup",         "/pre",    "/pre/",    "/pre/longer",
      "/pre/longest", "/pre/lo", "/one/two", "/literal-only/more",
      "/exact",       "/exact/", "/exactly", "/sp ace",
      "/brace{",      "",        "x",
  };
  for (const auto& mode : kModes) {
    RouteTable t(specs_of(patterns), mode.options);
    for (const auto& p : paths) expect_same(t, patterns, p, mode.name);
  }
}

// Random tables built from overlapping pieces, random paths from the same
// alphabet: every lookup path must agree with the plain RE2 loop.
TEST(RouteLookup, RandomTablesAgreeWithRe2) {
  std::mt19937 rng(20240601);
  const char* pieces[] = {"/a", "/b", "/ab", "a",   "b",     "(\\w+)", "(?P<n>\\d+)", "(a|b)",
                          "/",  ".",  "x?",  "\\.", "(/.*)", "[ab]",   "1",           "(?:/a)"};
  const char* path_pieces[] = {"/a", "/b", "/ab", "a", "b", "1", "22", "/", ".", "x", "/a1"};
  auto pick = [&](auto& arr) {
    return std::string(arr[std::uniform_int_distribution<std::size_t>(0, std::size(arr) - 1)(rng)]);
  };
  for (int round = 0; round < 40; ++round) {
    std::vector<std::string> patterns;
    auto n = std::uniform_int_distribution<int>(1, 60)(rng);
    while (static_cast<int>(patterns.size()) < n) {
      std::string p = rng() % 2 ? "^" : "";
      auto len = std::uniform_int_distribution<int>(1, 4)(rng);
      for (int k = 0; k < len; ++k) p += pick(pieces);
      if (rng() % 2) p += "$";
      RE2::Options quiet;
      quiet.set_log_errors(false);
      if (RE2(p, quiet).ok()) patterns.push_back(p);  // e.g. not two groups named n
    }
    std::vector<std::string> paths;
    for (int i = 0; i < 60; ++i) {
      std::string p;
      auto len = std::uniform_int_distribution<int>(0, 5)(rng);
      for (int k = 0; k < len; ++k) p += pick(path_pieces);
      paths.push_back(p);
    }
    for (const auto& mode : kModes) {
      RouteTable t(specs_of(patterns), mode.options);
      for (const auto& p : paths) expect_same(t, patterns, p, mode.name);
      if (HasFailure()) return;
    }
  }
}

TEST(RouteLookup, SmallTablesNeedNoSet) {
  RouteTable t(specs_of({"^/a$", "^/b$"}));
  EXPECT_FALSE(t.lookup_stats().combined);
  EXPECT_TRUE(t.match("/b"));
}

TEST(RouteTableErrors, BadPatternNamedInALargeTable) {
  std::vector<std::string> patterns;
  for (int i = 0; i < 50; ++i) patterns.push_back("^/r" + std::to_string(i) + "$");
  patterns.push_back("^/(unclosed");
  try {
    RouteTable t(specs_of(patterns));
    FAIL() << "expected invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("^/(unclosed"), std::string::npos) << e.what();
  }
}

TEST(RouteTableErrors, RouteNameGivenTwice) {
  std::vector<RouteSpec> specs;
  specs.push_back(class_route<Nop>("^/a$").named("x"));
  specs.push_back(class_route<Nop>("^/b$").named("x"));
  EXPECT_THROW(RouteTable(std::move(specs)), std::invalid_argument);
}

// ---- url_for ----

RouteTable url_routes() {
  std::vector<RouteSpec> specs;
  specs.push_back(class_route<Nop>(R"(^/about$)").named("about"));
  specs.push_back(class_route<Nop>(R"(^/user/(\d+)/post/(?P<slug>[\w-]+)$)").named("post"));
  specs.push_back(class_route<Nop>(R"(^/blog/(?P<year>\d{4})/(?P<slug>[^/]+)$)").named("blog"));
  specs.push_back(class_route<Nop>(R"(^/files/(?P<name>.+)\.json$)").named("file"));
  specs.push_back(class_route<Nop>(R"(/prefix/(?P<rest>.*))").named("prefix"));
  specs.push_back(function_route(R"(\A/q\Q.+*\E/(\w+)\z)", {Method::get}, [](WebMessageHandler&) {
                  }).named("quoted"));
  specs.push_back(class_route<Nop>(R"((?i)^/Mixed/(\d+)$)").named("flags"));
  specs.push_back(class_route<Nop>(R"(^/g/(?P<x>(?:[a-z]+-)*[a-z]+)$)").named("inner"));
  specs.push_back(class_route<Nop>(R"(^/unnamed/(\d+)$)"));
  // Not reversible:
  specs.push_back(class_route<Nop>(R"(^/items/?$)").named("quantifier"));
  specs.push_back(class_route<Nop>(R"(^/a$|^/b$)").named("alternation"));
  specs.push_back(class_route<Nop>(R"(^/[a-z]+/(\d+)$)").named("class"));
  specs.push_back(class_route<Nop>(R"(^/n/((\d+)-(\d+))$)").named("nested"));
  specs.push_back(class_route<Nop>(R"(^/(?:v1|v2)/(\d+)$)").named("noncapture"));
  specs.push_back(class_route<Nop>(R"(^/d/\d+$)").named("escape"));
  specs.push_back(class_route<Nop>(R"(^/two/(\d+)(\d+)$)").named("greedy"));
  return RouteTable(std::move(specs));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no exception)";
}

TEST(UrlFor, Positional) {
  auto t = url_routes();
  EXPECT_EQ(t.url_for("about"), "/about");
  EXPECT_EQ(t.url_for("about", UrlArgs{}), "/about");
  EXPECT_EQ(t.url_for("post", UrlArgs{"7", "take-five"}), "/user/7/post/take-five");
  EXPECT_EQ(t.url_for("prefix", UrlArgs{"x"}), "/prefix/x");
  EXPECT_EQ(t.url_for("quoted", UrlArgs{"w"}), "/q.+*/w");
  EXPECT_EQ(t.url_for("flags", UrlArgs{"3"}), "/Mixed/3");
  EXPECT_EQ(t.url_for("inner", UrlArgs{"take-five"}), "/g/take-five");
}

TEST(UrlFor, Named) {
  auto t = url_routes();
  EXPECT_EQ(t.url_for("blog", UrlKwargs{{"slug", "hello"}, {"year", "2024"}}), "/blog/2024/hello");
  EXPECT_EQ(t.url_for("file", UrlKwargs{{"name", "report"}}), "/files/report.json");
  EXPECT_NE(error_of([&] {
              t.url_for("blog", UrlKwargs{{"year", "2024"}});
            }).find("'slug'"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              t.url_for("blog", UrlKwargs{{"year", "2024"}, {"slug", "a"}, {"year", "2025"}});
            }).find("twice"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              t.url_for("blog", UrlKwargs{{"year", "2024"}, {"slug", "a"}, {"page", "2"}});
            }).find("'page'"),
            std::string::npos);
  // Group 1 of "post" has no name.
  EXPECT_NE(error_of([&] {
              t.url_for("post", UrlKwargs{{"slug", "x"}});
            }).find("by position"),
            std::string::npos);
}

TEST(UrlFor, PercentEncodesEachArgument) {
  auto t = url_routes();
  EXPECT_EQ(t.url_for("blog", UrlArgs{"2024", "a b/c%d?é"}), "/blog/2024/a%20b%2Fc%25d%3F%C3%A9");
  EXPECT_EQ(t.url_for("blog", UrlArgs{"2024", "AZaz09-._~"}), "/blog/2024/AZaz09-._~");
  EXPECT_EQ(t.url_for("file", UrlArgs{"x/y"}), "/files/x%2Fy.json");
}

TEST(UrlFor, RoundTripsThroughMatch) {
  auto t = url_routes();
  auto url = t.url_for("post", UrlArgs{"42", "a-b"});
  auto m = t.match(url);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->route->name, "post");
  EXPECT_EQ(m->args, (std::vector<std::string>{"42", "a-b"}));
}

TEST(UrlFor, Errors) {
  auto t = url_routes();
  EXPECT_NE(error_of([&] { t.url_for("nope"); }).find("no route named 'nope'"), std::string::npos);
  EXPECT_NE(error_of([&] { t.url_for(""); }).find("no route named"), std::string::npos);
  EXPECT_NE(error_of([&] { t.url_for("post", UrlArgs{"7"}); }).find("takes 2 argument(s), got 1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { t.url_for("about", UrlArgs{"x"}); }).find("takes 0"), std::string::npos);
  // The argument does not fit the group.
  EXPECT_NE(error_of([&] {
              t.url_for("post", UrlArgs{"x", "y"});
            }).find("does not match"),
            std::string::npos);
  // A greedy group swallows its neighbour's digits: the route would hand
  // the handler other values.
  EXPECT_NE(error_of([&] {
              t.url_for("greedy", UrlArgs{"1", "23"});
            }).find("gives group 1 as"),
            std::string::npos);
  EXPECT_NE(error_of([&] { t.url_for("post", UrlArgs{"7", "a b"}); }), "(no exception)");
  struct Case {
    const char* route;
    const char* why;
  };
  for (auto c : {Case{"quantifier", "quantifier"}, Case{"alternation", "alternation"},
                 Case{"class", "character class"}, Case{"nested", "group inside"},
                 Case{"noncapture", "non-capturing"}, Case{"escape", "escape"}}) {
    auto e = error_of([&] { t.url_for(c.route, UrlArgs{"1"}); });
    EXPECT_NE(e.find("cannot be reversed"), std::string::npos) << c.route << ": " << e;
    EXPECT_NE(e.find(c.why), std::string::npos) << c.route << ": " << e;
  }
}

TEST(RouteSpecName, NamedChainsAndSetsTheName) {
  auto spec = class_route<Nop>("^/x$").named("x");
  EXPECT_EQ(spec.name, "x");
  RouteSpec s2 = function_route("^/y$", {Method::get}, [](WebMessageHandler&) {});
  s2.named("y");
  EXPECT_EQ(s2.name, "y");
  EXPECT_TRUE(class_route<Nop>("^/z$").name.empty());
}

}  // namespace
}  // namespace brubeck

namespace brubeck {
namespace {

// Found by fuzz_route_patterns: a flag group between the literal prefix and a
// quantifier (`(?i)?` makes the `b` optional) once filed the route under
// "/ab", so "/a" never reached it.
TEST(Routes, FlagGroupBeforeAQuantifierDoesNotHideTheRoute) {
  std::vector<RouteSpec> specs;
  specs.push_back(function_route(R"(^/ab(?i)?$)", {Method::get}, [](WebMessageHandler&) {}));
  specs.push_back(function_route(R"(a(?i)*)", {Method::get}, [](WebMessageHandler&) {}));
  RouteTable routes(std::move(specs));
  auto m = routes.match("/a");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->route->pattern, R"(^/ab(?i)?$)");
  auto any = routes.match("/b");
  ASSERT_TRUE(any.has_value()) << "a(?i)* matches every path (RE2 partial match)";
}

}  // namespace
}  // namespace brubeck

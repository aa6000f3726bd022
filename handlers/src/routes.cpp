#include "brubeck/handlers/routes.hpp"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
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

// ---- The top level of a pattern: its literal prefix, and url_for ----------
//
// RE2 keeps its parse tree private, so this reads the source again, the way
// RE2's parser does (parse.cc), but only outside the groups. It only runs on
// patterns RE2 has accepted. Where in doubt it calls a piece an operator,
// which only shortens the literal prefix (lookup stays right) or refuses a
// pattern to url_for; url_for also checks the URL it builds against the
// route's RE2. The lookup tests compare every path through the table with a
// plain RE2 loop on random and awkward patterns.

struct Piece {
  enum Kind : std::uint8_t {
    literal,       // one character
    anchor_start,  // ^ \A
    anchor_end,    // $ \z
    capture,       // ( ... ) (?P<name> ... )
    group,         // (?: ... ) (?i: ... )
    flags,         // (?i)
    repeat,        // * + ? {n,m}
    any_char,      // . [ ... ]
    alternation,   // |
    escape,        // \d \w \b \pL ...
  };
  Kind kind;
  std::string_view text;  // literal: the character; otherwise the source
  bool nested_capture = false;
};

bool ascii_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Past the ']' closing the class that opens at p[i].
std::size_t skip_class(std::string_view p, std::size_t i) {
  ++i;
  if (i < p.size() && p[i] == '^') ++i;
  if (i < p.size() && p[i] == ']') ++i;  // first, ']' stands for itself
  while (i < p.size() && p[i] != ']') {
    if (p[i] == '\\') {
      i += 2;
      continue;
    }
    if (p.substr(i, 2) == "[:") {  // [[:alpha:]]
      auto end = p.find(":]", i + 2);
      if (end != std::string_view::npos) {
        i = end + 2;
        continue;
      }
    }
    ++i;
  }
  return std::min(i + 1, p.size());
}

// Past the \E closing the \Q that opens at p[i].
std::size_t skip_quoted(std::string_view p, std::size_t i) {
  auto end = p.find("\\E", i + 2);
  return end == std::string_view::npos ? p.size() : end + 2;
}

bool opens_capture(std::string_view p, std::size_t i) {
  if (i + 1 >= p.size() || p[i + 1] != '?') return true;
  return p.substr(i + 1, 3) == "?P<" ||
         (p.substr(i + 1, 2) == "?<" && i + 3 < p.size() && p[i + 3] != '=' && p[i + 3] != '!');
}

// Past the ')' closing the group that opens at p[i].
std::size_t skip_group(std::string_view p, std::size_t i, bool& nested_capture) {
  int depth = 0;
  while (i < p.size()) {
    char c = p[i];
    if (c == '\\') {
      i = i + 1 < p.size() && p[i + 1] == 'Q' ? skip_quoted(p, i) : i + 2;
      continue;
    }
    if (c == '[') {
      i = skip_class(p, i);
      continue;
    }
    if (c == '(') {
      if (depth > 0 && opens_capture(p, i)) nested_capture = true;
      ++depth;
    } else if (c == ')' && --depth == 0) {
      return i + 1;
    }
    ++i;
  }
  return p.size();
}

// The length of a counted repetition {n}, {n,}, {n,m} at p[i]; 0 when the
// brace is a literal one.
std::size_t repeat_length(std::string_view p, std::size_t i) {
  std::size_t j = i + 1;
  auto digits = [&] {
    auto from = j;
    while (j < p.size() && p[j] >= '0' && p[j] <= '9') ++j;
    return j > from;
  };
  if (!digits()) return 0;
  if (j < p.size() && p[j] == ',') {
    ++j;
    digits();
  }
  return j < p.size() && p[j] == '}' ? j + 1 - i : 0;
}

// One UTF-8 character: a repetition applies to all of it.
std::size_t char_length(std::string_view p, std::size_t i) {
  std::size_t j = i + 1;
  if (static_cast<unsigned char>(p[i]) >= 0x80)
    while (j < p.size() && (static_cast<unsigned char>(p[j]) & 0xC0) == 0x80) ++j;
  return j - i;
}

std::vector<Piece> top_level(std::string_view p) {
  std::vector<Piece> out;
  std::size_t i = 0;
  auto add = [&](Piece::Kind kind, std::size_t end) {
    out.push_back({kind, p.substr(i, end - i)});
    i = end;
  };
  while (i < p.size()) {
    switch (p[i]) {
      case '^':
        add(Piece::anchor_start, i + 1);
        break;
      case '$':
        add(Piece::anchor_end, i + 1);
        break;
      case '|':
        add(Piece::alternation, i + 1);
        break;
      case '.':
        add(Piece::any_char, i + 1);
        break;
      case '[':
        add(Piece::any_char, skip_class(p, i));
        break;
      case '*':
      case '+':
      case '?': {
        auto end = i + 1 < p.size() && p[i + 1] == '?' ? i + 2 : i + 1;  // lazy
        add(Piece::repeat, end);
        break;
      }
      case '{':
        if (auto n = repeat_length(p, i)) {
          auto end = i + n < p.size() && p[i + n] == '?' ? i + n + 1 : i + n;
          add(Piece::repeat, end);
        } else {
          add(Piece::literal, i + 1);
        }
        break;
      case '(': {
        bool nested = false;
        auto start = i;
        auto end = skip_group(p, i, nested);
        auto head = p.substr(start + 1);
        auto kind = Piece::capture;
        if (!opens_capture(p, start)) {
          auto colon = head.find_first_of(":)");
          kind =
              colon != std::string_view::npos && head[colon] == ')' ? Piece::flags : Piece::group;
        }
        add(kind, end);
        out.back().nested_capture = nested;
        break;
      }
      case '\\': {
        char e = i + 1 < p.size() ? p[i + 1] : '\0';
        if (e == 'A') {
          add(Piece::anchor_start, i + 2);
        } else if (e == 'z') {
          add(Piece::anchor_end, i + 2);
        } else if (e == 'Q') {
          auto end = skip_quoted(p, i);
          auto body_end = end == p.size() && !p.ends_with("\\E") ? end : end - 2;
          i += 2;
          while (i < body_end) add(Piece::literal, i + char_length(p, i));
          i = end;
        } else if (e != '\0' && !ascii_alnum(e) && static_cast<unsigned char>(e) < 0x80) {
          ++i;  // "\." is the character itself
          add(Piece::literal, i + 1);
        } else {
          auto end = std::min(i + 2, p.size());
          if ((e == 'p' || e == 'P' || e == 'x') && end < p.size() && p[end] == '{')
            end = std::min(p.find('}', end) + 1, p.size());
          add(Piece::escape, end);
        }
        break;
      }
      default:
        add(Piece::literal, i + char_length(p, i));
    }
  }
  return out;
}

// How url_for builds a route's path: literals[0] arg0 literals[1] arg1 ...
struct Reverse {
  std::vector<std::string> literals;
  std::string error;  // why the pattern cannot be reversed, if it cannot
};

Reverse reverse_of(std::string_view pattern, int groups) {
  auto pieces = top_level(pattern);
  std::size_t from = 0;
  std::size_t to = pieces.size();
  while (from < to &&
         (pieces[from].kind == Piece::anchor_start || pieces[from].kind == Piece::flags))
    ++from;
  while (to > from && pieces[to - 1].kind == Piece::anchor_end) --to;
  Reverse r;
  r.literals.emplace_back();
  auto fail = [&](std::string why, std::string_view what) {
    r.error = why + " '" + std::string(what) + "'";
    r.literals.clear();
    return r;
  };
  for (auto k = from; k < to; ++k) {
    const auto& piece = pieces[k];
    switch (piece.kind) {
      case Piece::literal:
        r.literals.back() += piece.text;
        break;
      case Piece::flags:
        break;  // (?i) still matches the literal text as written
      case Piece::capture:
        if (piece.nested_capture) return fail("a group inside the group", piece.text);
        r.literals.emplace_back();
        break;
      case Piece::anchor_start:
      case Piece::anchor_end:
        return fail("an anchor inside the path", piece.text);
      case Piece::group:
        return fail("a non-capturing group outside the groups", piece.text);
      case Piece::repeat:
        return fail("a quantifier outside the groups", piece.text);
      case Piece::any_char:
        return fail("a character class outside the groups", piece.text);
      case Piece::alternation:
        return fail("an alternation outside the groups", piece.text);
      case Piece::escape:
        return fail("an escape outside the groups", piece.text);
    }
  }
  if (static_cast<int>(r.literals.size()) - 1 != groups)
    return fail("groups it could not count", pattern);
  return r;
}

void percent_encode(std::string& out, std::string_view value) { out += url_encode(value); }

re2::StringPiece piece_of(std::string_view s) { return {s.data(), s.size()}; }

// The text every match of the pattern starts with, and whether the pattern is
// nothing more than that text (then a string comparison replaces RE2).
struct Literal {
  std::string prefix;
  bool whole = false;  // the pattern is ^prefix or ^prefix$
  bool exact = false;  // ... with the $
};

Literal literal_of(std::string_view pattern) {
  auto pieces = top_level(pattern);
  Literal lit;
  if (std::any_of(pieces.begin(), pieces.end(),
                  [](const Piece& p) { return p.kind == Piece::alternation; }))
    return lit;
  std::size_t k = 0;
  while (k < pieces.size() && pieces[k].kind == Piece::anchor_start) ++k;
  auto first = k;
  for (; k < pieces.size() && pieces[k].kind == Piece::literal; ++k) lit.prefix += pieces[k].text;
  // A flag group pushes nothing for RE2: in `^/ab(?i)?` the '?' makes the 'b'
  // optional.
  auto after = k;
  while (after < pieces.size() && pieces[after].kind == Piece::flags) ++after;
  if (after < pieces.size() && pieces[after].kind == Piece::repeat) {
    // The repetition makes the last character optional or repeated.
    if (k > first) lit.prefix.resize(lit.prefix.size() - pieces[k - 1].text.size());
    return lit;
  }
  auto rest = k;
  while (k < pieces.size() && pieces[k].kind == Piece::anchor_end) ++k;
  lit.whole = k == pieces.size();
  lit.exact = lit.whole && k > rest;
  return lit;
}
}  // namespace

RouteSpec function_route(std::string pattern, MethodSet methods, RouteFunction fn) {
  if (methods.has(Method::get)) methods.add(Method::head);
  methods.add(Method::options);
  auto shared = std::make_shared<const RouteFunction>(std::move(fn));
  return RouteSpec{std::move(pattern),
                   methods,
                   [shared] { return std::make_unique<FunctionHandler>(shared.get()); },
                   {},
                   std::nullopt};
}

struct RouteTable::Impl {
  struct Compiled {
    RouteSpec spec;
    std::unique_ptr<RE2> re;
    std::vector<std::string> group_names;  // by group index - 1; "" when unnamed
    Literal literal;
    Reverse reverse;  // named routes only
  };
  std::vector<Compiled> routes;

  // The routes by literal prefix: those whose prefix starts the path are the
  // only ones that can match it. Sorted, so the prefixes of a path are one
  // binary search and a walk up `parent` away.
  struct Prefix {
    std::string text;
    std::size_t parent;                 // the longest shorter one in the list, or npos
    std::vector<std::uint32_t> routes;  // ascending
  };
  std::vector<Prefix> prefixes;
  std::vector<std::uint32_t> unprefixed;  // routes that start with an operator
  static constexpr std::size_t kMaxTries = 32;
  std::size_t try_max = 0;

  // Every pattern at once: one pass over the path says which routes match.
  // Null when every lookup has few enough candidates, or it did not compile.
  std::unique_ptr<RE2::Set> set;
  std::map<std::string, std::size_t, std::less<>> by_name;
  mutable std::atomic<std::uint64_t> fallbacks{0};

  // Brubeck used re.match: anchored at the start, not at the end.
  static bool capture(const Compiled& r, std::string_view path, RouteMatch& m) {
    auto n = r.group_names.size() + 1;
    re2::StringPiece small[16];
    std::vector<re2::StringPiece> large;
    auto* groups = small;
    if (n > std::size(small)) {
      large.resize(n);
      groups = large.data();
    }
    if (!r.re->Match(piece_of(path), 0, path.size(), RE2::ANCHOR_START, groups,
                     static_cast<int>(n)))
      return false;
    m.route = &r.spec;
    m.args.reserve(n - 1);
    for (std::size_t i = 1; i < n; ++i) {
      std::string value(groups[i].data() ? groups[i].data() : "", groups[i].size());
      if (!r.group_names[i - 1].empty()) m.kwargs.emplace_back(r.group_names[i - 1], value);
      m.args.push_back(std::move(value));
    }
    return true;
  }

  static bool try_route(const Compiled& r, std::string_view path, RouteMatch& m) {
    if (!r.literal.whole) return capture(r, path, m);
    if (r.literal.exact ? path != r.literal.prefix : !path.starts_with(r.literal.prefix))
      return false;
    m.route = &r.spec;
    return true;
  }

  std::optional<RouteMatch> linear(std::string_view path) const {
    RouteMatch m;
    for (const auto& r : routes)
      if (path.starts_with(r.literal.prefix) && try_route(r, path, m)) return m;
    return std::nullopt;
  }

  // The routes that can match `path`, ascending; false when there are more
  // than try_max.
  bool candidates(std::string_view path, std::uint32_t* out, std::size_t& n) const {
    n = 0;
    auto take = [&](const std::vector<std::uint32_t>& rs) {
      if (n + rs.size() > try_max) return false;
      for (auto r : rs) out[n++] = r;
      return true;
    };
    if (!take(unprefixed)) return false;
    auto it = std::upper_bound(prefixes.begin(), prefixes.end(), path,
                               [](std::string_view p, const Prefix& e) { return p < e.text; });
    if (it != prefixes.begin()) {
      // Every listed prefix of `path` is a prefix of the greatest entry not
      // above it: walk down that entry's chain to the first that fits.
      auto i = static_cast<std::size_t>(it - prefixes.begin()) - 1;
      while (i != std::string::npos && !path.starts_with(prefixes[i].text)) i = prefixes[i].parent;
      for (; i != std::string::npos; i = prefixes[i].parent)
        if (!take(prefixes[i].routes)) return false;
    }
    if (n > 1) std::sort(out, out + n);
    return true;
  }

  std::optional<RouteMatch> combined(std::string_view path) const {
    // Per thread, not per table, so match() stays safe to call from any
    // thread; no fiber can switch inside it.
    thread_local std::vector<int> hits;
    RE2::Set::ErrorInfo error{};
    if (!set->Match(piece_of(path), &hits, &error)) {
      if (error.kind == RE2::Set::kNoError) return std::nullopt;
      fallbacks.fetch_add(1, std::memory_order_relaxed);
      return linear(path);
    }
    const auto& r = routes[static_cast<std::size_t>(*std::min_element(hits.begin(), hits.end()))];
    RouteMatch m;
    if (r.group_names.empty()) {
      m.route = &r.spec;  // the set has already matched it: nothing to capture
      return m;
    }
    if (capture(r, path, m)) return m;
    fallbacks.fetch_add(1, std::memory_order_relaxed);  // never seen: RE2 disagreed with itself
    return linear(path);
  }

  std::optional<RouteMatch> lookup(std::string_view path) const {
    std::uint32_t tries[kMaxTries];
    std::size_t n = 0;
    if (candidates(path, tries, n)) {
      RouteMatch m;
      for (std::size_t i = 0; i < n; ++i)
        if (try_route(routes[tries[i]], path, m)) return m;
      return std::nullopt;
    }
    return set ? combined(path) : linear(path);
  }

  void index_prefixes() {
    std::map<std::string_view, std::vector<std::uint32_t>> by_prefix;
    for (std::uint32_t i = 0; i < routes.size(); ++i) {
      const auto& p = routes[i].literal.prefix;
      (p.empty() ? unprefixed : by_prefix[p]).push_back(i);
    }
    for (auto& [text, rs] : by_prefix)
      prefixes.push_back({std::string(text), std::string::npos, std::move(rs)});
    // In sorted order an entry's own prefixes come before it, and anything
    // sorted between one of them and the entry starts with it too: so the
    // prefixes still open form a stack.
    std::vector<std::size_t> open;
    for (std::size_t i = 0; i < prefixes.size(); ++i) {
      while (!open.empty() && !prefixes[i].text.starts_with(prefixes[open.back()].text))
        open.pop_back();
      if (!open.empty()) prefixes[i].parent = open.back();
      open.push_back(i);
    }
  }

  const Compiled& reversible(std::string_view name) const {
    auto found = by_name.find(name);
    if (found == by_name.end())
      throw std::invalid_argument("url_for: no route named '" + std::string(name) + "'");
    const auto& r = routes[found->second];
    if (!r.reverse.error.empty())
      throw std::invalid_argument(url_error(r) + "cannot be reversed: " + r.reverse.error);
    return r;
  }

  static std::string url_error(const Compiled& r) {
    return "url_for('" + r.spec.name + "', pattern '" + r.spec.pattern + "'): ";
  }

  void build_set(const RouteTableOptions& options) {
    RE2::Options opts;
    opts.set_log_errors(false);  // an out-of-memory match must not log per request
    // RE2's 8 MiB default, or 8 KiB a route: the program takes a fraction,
    // the rest caps the DFA's state cache, which fills only as paths need.
    auto budget = std::max<std::int64_t>(std::int64_t{8} << 20,
                                         static_cast<std::int64_t>(routes.size()) * (8 << 10));
    opts.set_max_mem(options.set_max_mem > 0 ? options.set_max_mem : budget);
    auto s = std::make_unique<RE2::Set>(opts, RE2::ANCHOR_START);
    for (const auto& r : routes) {
      std::string error;
      if (s->Add(r.spec.pattern, &error) < 0)
        throw std::invalid_argument("bad route pattern '" + r.spec.pattern + "': " + error);
    }
    if (s->Compile()) set = std::move(s);
  }
};

RouteTable::RouteTable(std::vector<RouteSpec> specs) : RouteTable(std::move(specs), {}) {}

RouteTable::RouteTable(std::vector<RouteSpec> specs, const RouteTableOptions& options)
    : impl_(std::make_unique<Impl>()) {
  RE2::Options opts;
  opts.set_log_errors(false);
  impl_->routes.reserve(specs.size());
  for (auto& spec : specs) {
    auto re = std::make_unique<RE2>(spec.pattern, opts);
    if (!re->ok())
      throw std::invalid_argument("bad route pattern '" + spec.pattern + "': " + re->error());
    std::vector<std::string> names(static_cast<std::size_t>(re->NumberOfCapturingGroups()));
    for (const auto& [name, index] : re->NamedCapturingGroups())
      names[static_cast<std::size_t>(index - 1)] = name;
    Reverse reverse;
    if (!spec.name.empty()) {
      if (!impl_->by_name.emplace(spec.name, impl_->routes.size()).second)
        throw std::invalid_argument("route name '" + spec.name + "' is given twice");
      reverse = reverse_of(spec.pattern, re->NumberOfCapturingGroups());
    }
    auto literal = literal_of(spec.pattern);
    impl_->routes.push_back(
        {std::move(spec), std::move(re), std::move(names), std::move(literal), std::move(reverse)});
  }
  impl_->try_max = std::min(options.try_max, Impl::kMaxTries);
  impl_->index_prefixes();
  if (impl_->routes.size() > impl_->try_max) impl_->build_set(options);
}

RouteTable::~RouteTable() = default;
RouteTable::RouteTable(RouteTable&&) noexcept = default;

std::size_t RouteTable::size() const noexcept { return impl_->routes.size(); }

std::size_t RouteTable::index_of(const RouteSpec* route) const noexcept {
  const auto& rs = impl_->routes;
  // The specs lie in the table's vector, in order: a binary search by address.
  auto it = std::upper_bound(rs.begin(), rs.end(), route, [](const RouteSpec* p, const auto& c) {
    return std::less<const RouteSpec*>{}(p, &c.spec);
  });
  if (it == rs.begin() || &std::prev(it)->spec != route) return rs.size();
  return static_cast<std::size_t>(std::prev(it) - rs.begin());
}

std::optional<RouteMatch> RouteTable::match(std::string_view path) const {
  return impl_->lookup(path);
}

RouteTable::LookupStats RouteTable::lookup_stats() const noexcept {
  return {impl_->set != nullptr, impl_->fallbacks.load(std::memory_order_relaxed)};
}

namespace {
const std::vector<std::string> kNoArgs;
}

std::string RouteTable::url_for(std::string_view route_name) const {
  return url_for(route_name, kNoArgs);
}

std::string RouteTable::url_for(std::string_view route_name,
                                const std::vector<std::string>& args) const {
  const auto& r = impl_->reversible(route_name);
  auto groups = r.reverse.literals.size() - 1;
  if (args.size() != groups)
    throw std::invalid_argument(Impl::url_error(r) + "takes " + std::to_string(groups) +
                                " argument(s), got " + std::to_string(args.size()));

  std::string url = r.reverse.literals[0];
  std::vector<std::size_t> bounds;  // where each encoded argument sits in url
  for (std::size_t i = 0; i < groups; ++i) {
    bounds.push_back(url.size());
    percent_encode(url, args[i]);
    bounds.push_back(url.size());
    url += r.reverse.literals[i + 1];
  }

  // The URL must lead back here with the same arguments: an argument the
  // group's expression rejects, or that a greedy neighbour would swallow,
  // gives a URL that routes elsewhere or hands the handler other values.
  RouteMatch m;
  if (!Impl::capture(r, url, m))
    throw std::invalid_argument(Impl::url_error(r) + "'" + url + "' does not match the route");
  for (std::size_t i = 0; i < groups; ++i) {
    std::string_view sent(url.data() + bounds[2 * i], bounds[2 * i + 1] - bounds[2 * i]);
    if (m.args[i] != sent)
      throw std::invalid_argument(Impl::url_error(r) + "'" + url + "' gives group " +
                                  std::to_string(i + 1) + " as '" + m.args[i] + "', not '" +
                                  std::string(sent) + "'");
  }
  return url;
}

std::string RouteTable::url_for(
    std::string_view route_name,
    const std::vector<std::pair<std::string, std::string>>& kwargs) const {
  const auto& r = impl_->reversible(route_name);
  auto named = [&](const std::string& name) {
    return [&](const auto& kv) { return kv.first == name; };
  };
  std::vector<std::string> args;
  args.reserve(r.group_names.size());
  for (std::size_t i = 0; i < r.group_names.size(); ++i) {
    const auto& name = r.group_names[i];
    if (name.empty())
      throw std::invalid_argument(Impl::url_error(r) + "group " + std::to_string(i + 1) +
                                  " has no name: pass the arguments by position");
    auto n = std::count_if(kwargs.begin(), kwargs.end(), named(name));
    if (n != 1)
      throw std::invalid_argument(
          Impl::url_error(r) + (n == 0 ? "no argument '" : "argument given twice: '") + name + "'");
    args.push_back(std::find_if(kwargs.begin(), kwargs.end(), named(name))->second);
  }
  for (const auto& [name, value] : kwargs)
    if (std::find(r.group_names.begin(), r.group_names.end(), name) == r.group_names.end())
      throw std::invalid_argument(Impl::url_error(r) + "no group named '" + name + "'");
  return url_for(route_name, args);
}

}  // namespace brubeck

#include "brubeck/handlers/cookies.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <stdexcept>

namespace brubeck {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;
using Secrets = std::vector<std::string>;
using std::chrono::seconds;
using std::chrono::system_clock;

system_clock::time_point at(std::int64_t unix_seconds) {
  return system_clock::time_point{seconds(unix_seconds)};
}

// ---- parse_cookie_header ----

TEST(ParseCookieHeader, RfcExamples) {
  // RFC 6265 §3.1 / §4.2.
  EXPECT_EQ(parse_cookie_header("SID=31d4d96e407aad42"), (Pairs{{"SID", "31d4d96e407aad42"}}));
  EXPECT_EQ(parse_cookie_header("SID=31d4d96e407aad42; lang=en-US"),
            (Pairs{{"SID", "31d4d96e407aad42"}, {"lang", "en-US"}}));
}

TEST(ParseCookieHeader, QuotedValuesAreUnquoted) {
  EXPECT_EQ(parse_cookie_header(R"(a="hello"; b=""; c="x)"),
            (Pairs{{"a", "hello"}, {"b", ""}, {"c", "\"x"}}));
  EXPECT_EQ(parse_cookie_header(R"(a=")"), (Pairs{{"a", "\""}}));  // one quote is not a pair
  EXPECT_EQ(parse_cookie_header(R"(a= "q" )"), (Pairs{{"a", "q"}}));
}

TEST(ParseCookieHeader, OddSpacing) {
  EXPECT_EQ(parse_cookie_header("a=1;b=2;  c = 3 ;\td=4\t;e=5 6"),
            (Pairs{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5 6"}}));
  EXPECT_EQ(parse_cookie_header("  a=1  "), (Pairs{{"a", "1"}}));
}

TEST(ParseCookieHeader, EmptyInputs) {
  EXPECT_TRUE(parse_cookie_header("").empty());
  EXPECT_TRUE(parse_cookie_header(" ").empty());
  EXPECT_TRUE(parse_cookie_header(";;;").empty());
  EXPECT_TRUE(parse_cookie_header("; ; ;").empty());
  EXPECT_EQ(parse_cookie_header("a="), (Pairs{{"a", ""}}));
  EXPECT_EQ(parse_cookie_header(";a=1;"), (Pairs{{"a", "1"}}));
}

TEST(ParseCookieHeader, SkipsGarbage) {
  EXPECT_EQ(parse_cookie_header("novalue; =x; = ; a b=1; ok=1; bad\"name=2; x=; q(=3; t=a=b"),
            (Pairs{{"ok", "1"}, {"x", ""}, {"t", "a=b"}}));
  EXPECT_EQ(parse_cookie_header(std::string_view("a\0=1; b=2", 9)), (Pairs{{"b", "2"}}));
  EXPECT_EQ(parse_cookie_header("\xff=1; n=\xff"), (Pairs{{"n", "\xff"}}));
  // Commas do not separate cookies (RFC 6265 §4.2.1).
  EXPECT_EQ(parse_cookie_header("a=1, b=2"), (Pairs{{"a", "1, b=2"}}));
}

TEST(ParseCookieHeader, DuplicateNamesKeepOrder) {
  EXPECT_EQ(parse_cookie_header("a=1; b=2; a=3; a=1"),
            (Pairs{{"a", "1"}, {"b", "2"}, {"a", "3"}, {"a", "1"}}));
}

TEST(ParseCookieHeader, RandomBytesNeverThrowAndYieldTokens) {
  std::mt19937 rng(6265);
  const std::string alphabet("ab=; \t\"\r\n\0\xff,=;", 14);
  for (int i = 0; i < 5000; ++i) {
    std::string s(rng() % 64, '\0');
    for (auto& c : s) c = (i % 2) ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
    Pairs pairs;
    ASSERT_NO_THROW(pairs = parse_cookie_header(s)) << i;
    for (const auto& [name, value] : pairs) EXPECT_TRUE(is_cookie_name(name)) << name;
  }
}

// ---- format_set_cookie ----

TEST(FormatSetCookie, DefaultsToRootPath) {
  EXPECT_EQ(format_set_cookie("sid", "abc"), "sid=abc; Path=/");
  EXPECT_EQ(format_set_cookie("sid", ""), "sid=; Path=/");
  CookieOptions no_path;
  no_path.path.clear();
  EXPECT_EQ(format_set_cookie("sid", "abc", no_path), "sid=abc");
}

TEST(FormatSetCookie, EveryAttribute) {
  CookieOptions o;
  o.max_age = seconds(3600);
  o.expires = at(1445412480);
  o.domain = "example.com";
  o.path = "/app";
  o.secure = true;
  o.http_only = true;
  o.same_site = "Lax";
  EXPECT_EQ(format_set_cookie("sid", "a1!#$%&'()*+-./:<=>?@[]^_`{|}~", o),
            "sid=a1!#$%&'()*+-./:<=>?@[]^_`{|}~; Path=/app; Domain=example.com; Max-Age=3600; "
            "Expires=Wed, 21 Oct 2015 07:28:00 GMT; Secure; HttpOnly; SameSite=Lax");
}

TEST(FormatSetCookie, EachAttributeAlone) {
  auto with = [](auto set) {
    CookieOptions o;
    o.path.clear();
    set(o);
    return format_set_cookie("n", "v", o);
  };
  EXPECT_EQ(with([](CookieOptions& o) { o.max_age = seconds(0); }), "n=v; Max-Age=0");
  EXPECT_EQ(with([](CookieOptions& o) { o.max_age = seconds(-5); }), "n=v; Max-Age=0");
  EXPECT_EQ(with([](CookieOptions& o) { o.max_age = seconds(86400); }), "n=v; Max-Age=86400");
  EXPECT_EQ(with([](CookieOptions& o) { o.expires = at(0); }),
            "n=v; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(with([](CookieOptions& o) { o.domain = ".Sub-1.example.org"; }),
            "n=v; Domain=.Sub-1.example.org");
  EXPECT_EQ(with([](CookieOptions& o) { o.path = "/a b/c%20"; }), "n=v; Path=/a b/c%20");
  EXPECT_EQ(with([](CookieOptions& o) { o.secure = true; }), "n=v; Secure");
  EXPECT_EQ(with([](CookieOptions& o) { o.http_only = true; }), "n=v; HttpOnly");
  EXPECT_EQ(with([](CookieOptions& o) { o.same_site = "Strict"; }), "n=v; SameSite=Strict");
  EXPECT_EQ(with([](CookieOptions& o) { o.same_site = "Lax"; }), "n=v; SameSite=Lax");
  EXPECT_EQ(with([](CookieOptions& o) {
              o.same_site = "None";
              o.secure = true;
            }),
            "n=v; Secure; SameSite=None");
}

TEST(FormatHttpDate, ImfFixdate) {
  EXPECT_EQ(format_http_date(at(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format_http_date(at(1445412480)), "Wed, 21 Oct 2015 07:28:00 GMT");
  EXPECT_EQ(format_http_date(at(1709210096)), "Thu, 29 Feb 2024 12:34:56 GMT");
  EXPECT_EQ(format_http_date(at(946684800) - std::chrono::milliseconds(1)),
            "Fri, 31 Dec 1999 23:59:59 GMT");  // truncated, never rounded up
  EXPECT_EQ(format_http_date(at(-86400)), "Wed, 31 Dec 1969 00:00:00 GMT");
}

TEST(FormatSetCookie, RefusesInjectionInValue) {
  for (std::string_view bad : {"a\rb", "a\nb", "v\r\nSet-Cookie: evil=1", "a;b", "a,b", "a b",
                               "a\"b", "\"quoted\"", "a\\b", "a\tb", "\x7f", "\xc3\xa9"}) {
    EXPECT_THROW(format_set_cookie("n", bad), std::invalid_argument) << bad;
    EXPECT_FALSE(is_cookie_value(bad)) << bad;
  }
  EXPECT_THROW(format_set_cookie("n", std::string_view("a\0b", 3)), std::invalid_argument);
  try {
    format_set_cookie("sid", "a;b");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("cookie-octets"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("sid"));
  }
}

TEST(FormatSetCookie, RefusesBadNames) {
  for (std::string_view bad : {"", "a b", "a=b", "a;b", "a,b", "a\r\n", "a\"", "(a)", "a/b", "a:b",
                               "a@b", "a\tb", "\xc3\xa9", "a\x7f"}) {
    EXPECT_THROW(format_set_cookie(bad, "v"), std::invalid_argument) << bad;
    EXPECT_FALSE(is_cookie_name(bad)) << bad;
  }
  EXPECT_TRUE(is_cookie_name("A-z_0.9!#$%&'*+^`|~"));
}

TEST(FormatSetCookie, RefusesBadAttributes) {
  auto fails = [](auto set) {
    CookieOptions o;
    set(o);
    EXPECT_THROW(format_set_cookie("n", "v", o), std::invalid_argument);
  };
  fails([](CookieOptions& o) { o.domain = "example.com; Secure"; });
  fails([](CookieOptions& o) { o.domain = "example.com\r\nX: y"; });
  fails([](CookieOptions& o) { o.domain = "exa mple.com"; });
  fails([](CookieOptions& o) { o.domain = std::string(1025, 'a'); });
  fails([](CookieOptions& o) { o.path = "/a;Domain=evil.com"; });
  fails([](CookieOptions& o) { o.path = "/a\nb"; });
  fails([](CookieOptions& o) { o.path = "/a\x7f"; });
  fails([](CookieOptions& o) { o.path = "relative"; });
  fails([](CookieOptions& o) { o.path = "/" + std::string(1024, 'a'); });
  fails([](CookieOptions& o) { o.same_site = "lax"; });
  fails([](CookieOptions& o) { o.same_site = "Lax; Secure"; });
  fails([](CookieOptions& o) { o.same_site = "None"; });  // without Secure
  EXPECT_THROW(format_set_cookie("n", std::string(4096, 'v')), std::invalid_argument);
  EXPECT_NO_THROW(format_set_cookie("n", std::string(4095, 'v')));
}

TEST(FormatSetCookie, EnforcesNamePrefixes) {
  CookieOptions secure;
  secure.secure = true;
  EXPECT_THROW(format_set_cookie("__Secure-id", "v"), std::invalid_argument);
  EXPECT_EQ(format_set_cookie("__Secure-id", "v", secure), "__Secure-id=v; Path=/; Secure");
  EXPECT_THROW(format_set_cookie("__host-id", "v"), std::invalid_argument);
  EXPECT_EQ(format_set_cookie("__Host-id", "v", secure), "__Host-id=v; Path=/; Secure");
  CookieOptions with_domain = secure;
  with_domain.domain = "example.com";
  EXPECT_THROW(format_set_cookie("__Host-id", "v", with_domain), std::invalid_argument);
  CookieOptions sub_path = secure;
  sub_path.path = "/app";
  EXPECT_THROW(format_set_cookie("__Host-id", "v", sub_path), std::invalid_argument);
}

// ---- format_delete_cookie ----

TEST(FormatDeleteCookie, ExpiresNow) {
  EXPECT_EQ(format_delete_cookie("sid"),
            "sid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(
      format_delete_cookie("sid", "/app", "example.com"),
      "sid=; Path=/app; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format_delete_cookie("__Host-sid"),
            "__Host-sid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure");
  EXPECT_THROW(format_delete_cookie("bad name"), std::invalid_argument);
  EXPECT_THROW(format_delete_cookie("sid", "/;x"), std::invalid_argument);
}

// ---- CookieSigner ----

const std::string kSecret = "0123456789abcdef-secret";
const std::string kOld = "an-old-secret-that-is-long-enough";
const std::string kNew = "a-brand-new-secret-0123456789";
constexpr std::int64_t kT = 1700000000;

TEST(CookieSigner, RejectsWeakSecrets) {
  EXPECT_THROW(CookieSigner(Secrets{}), std::invalid_argument);
  EXPECT_THROW(CookieSigner(Secrets{std::string(15, 'x')}), std::invalid_argument);
  EXPECT_THROW(CookieSigner(Secrets{kSecret, std::string(15, 'x')}), std::invalid_argument);
  EXPECT_NO_THROW(CookieSigner(Secrets{std::string(16, 'x')}));
  EXPECT_NO_THROW(CookieSigner(Secrets{std::string(200, 'x')}));  // longer than a SHA-256 block
}

TEST(CookieSigner, KnownAnswer) {
  // HMAC-SHA256 computed independently (Python hmac) over "sid|aGVsbG8|1700000000".
  CookieSigner s(Secrets{kSecret});
  EXPECT_EQ(s.sign("sid", "hello", at(kT)),
            "aGVsbG8|1700000000|ab9b032344d39dce8a3df3ca730c2eb71e54d77c2fb4a614c41b0473450d0930");
  EXPECT_EQ(s.sign("sid", "hello", at(kT) + std::chrono::milliseconds(999)),
            s.sign("sid", "hello", at(kT)));
}

TEST(CookieSigner, RoundTrip) {
  CookieSigner s(Secrets{kSecret});
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  for (const std::string& value :
       {std::string(), std::string("hello"), std::string("a; b=\"c\"\r\n,\\ é"),
        std::string(3000, 'z'), std::string("\xfb\xff\xfe"), all_bytes}) {
    auto signed_value = s.sign("sid", value, at(kT));
    EXPECT_TRUE(is_cookie_value(signed_value)) << signed_value;
    EXPECT_NO_THROW(format_set_cookie("sid", signed_value));
    EXPECT_EQ(s.verify("sid", signed_value, seconds(60), at(kT + 10)), value);
  }
  EXPECT_EQ(s.sign("n", "\xfb\xff\xfe", at(kT)).substr(0, 5), "-__-|");  // URL-safe, unpadded
  CookieSigner copy = s;                                                 // copies share the keys
  EXPECT_EQ(copy.verify("sid", s.sign("sid", "v", at(kT)), seconds(60), at(kT)), "v");
}

TEST(CookieSigner, RejectsTampering) {
  CookieSigner s(Secrets{kSecret});
  const std::string good = s.sign("sid", "hello", at(kT));
  auto check = [&](const std::string& v) { return s.verify("sid", v, seconds(60), at(kT)); };
  ASSERT_EQ(check(good), "hello");

  std::string value = good;
  value[0] = 'b';  // aGVsbG8 -> bGVsbG8
  EXPECT_EQ(check(value), std::nullopt);
  EXPECT_EQ(check("aGVsbG9" + good.substr(7)), std::nullopt);
  std::string stamp = good;
  stamp[good.find('|') + 10] = '1';  // 1700000000 -> 1700000001
  EXPECT_EQ(check(stamp), std::nullopt);
  std::string sig = good;
  sig.back() = sig.back() == '0' ? '1' : '0';
  EXPECT_EQ(check(sig), std::nullopt);

  std::string upper = good;
  for (auto i = good.rfind('|'); i < upper.size(); ++i)
    if (upper[i] >= 'a' && upper[i] <= 'f') upper[i] = static_cast<char>(upper[i] - 32);
  ASSERT_NE(upper, good);
  EXPECT_EQ(check(upper), std::nullopt);

  EXPECT_EQ(check(good.substr(0, good.size() - 1)), std::nullopt);
  EXPECT_EQ(check(good + "0"), std::nullopt);
  EXPECT_EQ(check("x|" + good), std::nullopt);
  EXPECT_EQ(check(" " + good), std::nullopt);

  // Every single-byte change anywhere is rejected.
  for (std::size_t i = 0; i < good.size(); ++i)
    for (char c : std::string_view("0aA|-_9f\0", 9)) {
      if (good[i] == c) continue;
      std::string m = good;
      m[i] = c;
      EXPECT_EQ(check(m), std::nullopt) << m;
    }
}

TEST(CookieSigner, BindsTheCookieName) {
  CookieSigner s(Secrets{kSecret});
  auto v = s.sign("role", "admin", at(kT));
  EXPECT_EQ(s.verify("role", v, seconds(60), at(kT)), "admin");
  EXPECT_EQ(s.verify("other", v, seconds(60), at(kT)), std::nullopt);
  EXPECT_EQ(s.verify("Role", v, seconds(60), at(kT)), std::nullopt);
  EXPECT_EQ(s.verify("", v, seconds(60), at(kT)), std::nullopt);
}

TEST(CookieSigner, Expiry) {
  CookieSigner s(Secrets{kSecret});
  auto v = s.sign("sid", "x", at(kT));
  EXPECT_EQ(s.verify("sid", v, seconds(3600), at(kT + 3600)), "x");
  EXPECT_EQ(s.verify("sid", v, seconds(3600), at(kT + 3601)), std::nullopt);
  EXPECT_EQ(s.verify("sid", v, seconds(0), at(kT)), "x");
  EXPECT_EQ(s.verify("sid", v, seconds(0), at(kT + 1)), std::nullopt);
  EXPECT_EQ(s.verify("sid", v, seconds(-1), at(kT)), std::nullopt);
}

TEST(CookieSigner, RejectsFutureTimestamps) {
  CookieSigner s(Secrets{kSecret});
  EXPECT_EQ(s.verify("sid", s.sign("sid", "x", at(kT + 300)), seconds(60), at(kT)), "x");
  EXPECT_EQ(s.verify("sid", s.sign("sid", "x", at(kT + 301)), seconds(60), at(kT)), std::nullopt);
  EXPECT_EQ(s.verify("sid", s.sign("sid", "x", at(kT + 10 * 365 * 86400)),
                     seconds(1'000'000'000'000), at(kT)),
            std::nullopt);
  EXPECT_THROW(s.sign("sid", "x", at(-1)), std::invalid_argument);
}

TEST(CookieSigner, RotatesSecrets) {
  CookieSigner old_only(Secrets{kOld});
  CookieSigner rotated(Secrets{kNew, kOld});
  CookieSigner new_only(Secrets{kNew});
  auto by_old = old_only.sign("sid", "v", at(kT));
  auto by_new = rotated.sign("sid", "v", at(kT));
  EXPECT_NE(by_old, by_new);
  EXPECT_EQ(new_only.sign("sid", "v", at(kT)), by_new);  // the first secret signs

  EXPECT_EQ(rotated.verify("sid", by_old, seconds(60), at(kT)), "v");
  EXPECT_EQ(rotated.verify("sid", by_new, seconds(60), at(kT)), "v");
  EXPECT_EQ(new_only.verify("sid", by_old, seconds(60), at(kT)), std::nullopt);  // removed
  EXPECT_EQ(old_only.verify("sid", by_new, seconds(60), at(kT)), std::nullopt);
}

TEST(CookieSigner, GarbageNeverThrows) {
  CookieSigner s(Secrets{kSecret, kOld});
  const std::string good = s.sign("sid", "hello", at(kT));
  const std::string pieces[] = {
      "|",    "0", "1700000000",           "aGVsbG8", "ab9b0323", "-", "_", "=", "\0",
      "\xff", " ", "99999999999999999999", "abc",     "+",        "/"};
  std::mt19937 rng(2104);
  for (int i = 0; i < 5000; ++i) {
    std::string g;
    switch (i % 3) {
      case 0:  // random bytes
        g.resize(rng() % 200);
        for (auto& c : g) c = static_cast<char>(rng());
        break;
      case 1:  // shaped like a signed value
        for (int n = static_cast<int>(rng() % 12); n > 0; --n)
          g += pieces[rng() % std::size(pieces)];
        g += "|" + std::string(64, "0123456789abcdef"[rng() % 16]);
        break;
      default:  // a valid value, randomly damaged
        g = good;
        for (int n = 1 + static_cast<int>(rng() % 3); n > 0; --n)
          g[rng() % g.size()] = static_cast<char>(rng());
        if (g == good) continue;
    }
    std::optional<std::string> r;
    ASSERT_NO_THROW(r = s.verify("sid", g, seconds(60), at(kT))) << i;
    EXPECT_EQ(r, std::nullopt) << i;
  }
}

}  // namespace
}  // namespace brubeck

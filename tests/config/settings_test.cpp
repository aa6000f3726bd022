// The settings table: every row works from each source, the README and the
// example file are the table's, and a bad value says where it came from.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "brubeck/config/config.hpp"

namespace brubeck {
namespace {

using namespace std::chrono_literals;
using Strings = std::vector<std::string>;

struct Env {
  std::map<std::string, std::string> vars;
  std::function<const char*(const char*)> fn() const {
    return [this](const char* n) -> const char* {
      auto it = vars.find(n);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char path[] = "/tmp/brubeck-settings-XXXXXX";
    int fd = ::mkstemp(path);
    EXPECT_GE(fd, 0);
    ::close(fd);
    path_ = path;
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string source_dir() {
  const char* dir = std::getenv("BRUBECK_SOURCE_DIR");  // set by ctest
  if (dir == nullptr) ADD_FAILURE() << "BRUBECK_SOURCE_DIR is not set";
  return dir != nullptr ? dir : ".";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Where a test writes what a checked file should hold, for copying over it.
std::string write_expected(const std::string& name, const std::string& text) {
  const char* dir = std::getenv("BRUBECK_BINARY_DIR");
  std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// One non-default value per setting, spelt independently of the library,
// and what it must do to the typed Config field the setting stands for.
struct Sample {
  SettingValue value;
  std::function<void(const Config&)> check;
};

const std::map<std::string, Sample>& framework_samples() {
  static const std::map<std::string, Sample> samples = {
      {"shards", {std::uint64_t{3}, [](const Config& c) { EXPECT_EQ(c.shards, 3u); }}},
      {"send_specs",
       {Strings{"tcp://10.0.0.1:1", "ipc:///tmp/send"},
        [](const Config& c) {
          EXPECT_EQ(c.send_specs, (Strings{"tcp://10.0.0.1:1", "ipc:///tmp/send"}));
        }}},
      {"recv_specs",
       {Strings{"tcp://10.0.0.2:2", "inproc://recv"},
        [](const Config& c) {
          EXPECT_EQ(c.recv_specs, (Strings{"tcp://10.0.0.2:2", "inproc://recv"}));
        }}},
      {"stack_size",
       {std::uint64_t{262144}, [](const Config& c) { EXPECT_EQ(c.stack_size, 262144u); }}},
      {"stack_guard", {false, [](const Config& c) { EXPECT_FALSE(c.stack_guard); }}},
      {"grace_ms", {std::uint64_t{1234}, [](const Config& c) { EXPECT_EQ(c.grace, 1234ms); }}},
      {"idle_poll_us", {std::uint64_t{56}, [](const Config& c) { EXPECT_EQ(c.idle_poll, 56us); }}},
      {"pub_hwm", {std::uint64_t{777}, [](const Config& c) { EXPECT_EQ(c.pub_hwm, 777u); }}},
      {"pin_threads", {true, [](const Config& c) { EXPECT_TRUE(c.pin_threads); }}},
      {"log_level",
       {std::string("debug"), [](const Config& c) { EXPECT_EQ(c.log_level, "debug"); }}},
      {"access_log",
       {std::string("/var/log/app/access.log"),
        [](const Config& c) { EXPECT_EQ(c.access_log, "/var/log/app/access.log"); }}},
      {"access_log_format",
       {std::string("json"), [](const Config& c) { EXPECT_EQ(c.access_log_format, "json"); }}},
      {"access_log_sample",
       {std::uint64_t{10}, [](const Config& c) { EXPECT_EQ(c.access_log_sample, 10u); }}},
      {"metrics_route",
       {std::string("/admin/metrics"),
        [](const Config& c) { EXPECT_EQ(c.metrics_route, "/admin/metrics"); }}},
      {"cookie_secrets",
       {Strings{"0123456789abcdef-one", "0123456789abcdef-two"},
        [](const Config& c) {
          EXPECT_EQ(c.cookie_secrets, (Strings{"0123456789abcdef-one", "0123456789abcdef-two"}));
        }}},
      {"max_body_bytes",
       {std::uint64_t{4096}, [](const Config& c) { EXPECT_EQ(c.max_body_bytes, 4096u); }}},
      {"mongrel2_chroot",
       {std::string("/srv/m2"), [](const Config& c) { EXPECT_EQ(c.mongrel2_chroot, "/srv/m2"); }}},
      {"upload_store",
       {std::string("/srv/spool"),
        [](const Config& c) { EXPECT_EQ(c.upload_store, "/srv/spool"); }}},
      {"request_timeout_ms",
       {std::uint64_t{2500}, [](const Config& c) { EXPECT_EQ(c.request_timeout, 2500ms); }}},
      {"health_route",
       {std::string("/healthz"), [](const Config& c) { EXPECT_EQ(c.health_route, "/healthz"); }}},
      {"live_route",
       {std::string("/admin/live"),
        [](const Config& c) { EXPECT_EQ(c.live_route, "/admin/live"); }}},
      {"offload_threads",
       {std::uint64_t{7}, [](const Config& c) { EXPECT_EQ(c.offload_threads, 7u); }}},
      {"offload_queue",
       {std::uint64_t{99}, [](const Config& c) { EXPECT_EQ(c.offload_queue, 99u); }}},
      {"max_in_flight",
       {std::uint64_t{123}, [](const Config& c) { EXPECT_EQ(c.max_in_flight, 123u); }}},
      {"max_header_bytes",
       {std::uint64_t{16384}, [](const Config& c) { EXPECT_EQ(c.max_header_bytes, 16384u); }}},
      {"stall_ms", {std::uint64_t{250}, [](const Config& c) { EXPECT_EQ(c.stall, 250ms); }}},
      {"templates",
       {std::string("/srv/templates"),
        [](const Config& c) { EXPECT_EQ(c.templates, "/srv/templates"); }}},
      {"templates_reload", {true, [](const Config& c) { EXPECT_TRUE(c.templates_reload); }}},
      {"session_store",
       {std::string("redis"), [](const Config& c) { EXPECT_EQ(c.session_store, "redis"); }}},
      {"session_sqlite",
       {std::string("/srv/s.db"),
        [](const Config& c) { EXPECT_EQ(c.session_sqlite, "/srv/s.db"); }}},
      {"session_redis",
       {std::string("10.0.0.3:6390"),
        [](const Config& c) { EXPECT_EQ(c.session_redis, "10.0.0.3:6390"); }}},
      {"session_ttl_s",
       {std::uint64_t{3600}, [](const Config& c) { EXPECT_EQ(c.session_ttl_s, 3600u); }}},
      {"session_secure_cookie",
       {true, [](const Config& c) { EXPECT_TRUE(c.session_secure_cookie); }}},
      {"login_url",
       {std::string("/account/login"),
        [](const Config& c) { EXPECT_EQ(c.login_url, "/account/login"); }}},
      {"users_sqlite",
       {std::string("/srv/u.db"), [](const Config& c) { EXPECT_EQ(c.users_sqlite, "/srv/u.db"); }}},
  };
  return samples;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// The sample as a TOML value, environment text and command-line words.
std::string as_toml(const SettingValue& v) {
  if (auto b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto n = std::get_if<std::uint64_t>(&v)) return std::to_string(*n);
  if (auto s = std::get_if<std::string>(&v)) return quoted(*s);
  std::string out = "[";
  for (const auto& item : std::get<Strings>(v)) out += (out.size() > 1 ? ", " : "") + quoted(item);
  return out + "]";
}

std::string as_env(const SettingValue& v) {
  if (auto b = std::get_if<bool>(&v)) return *b ? "1" : "0";
  if (auto n = std::get_if<std::uint64_t>(&v)) return std::to_string(*n);
  if (auto s = std::get_if<std::string>(&v)) return *s;
  std::string out;
  for (const auto& item : std::get<Strings>(v)) out += (out.empty() ? "" : ",") + item;
  return out;
}

Strings as_args(const Setting& row, const SettingValue& v) {
  if (auto b = std::get_if<bool>(&v)) return {*b ? row.long_flag() : row.negated_flag()};
  if (auto n = std::get_if<std::uint64_t>(&v)) return {row.long_flag(), std::to_string(*n)};
  if (auto s = std::get_if<std::string>(&v)) return {row.long_flag(), *s};
  Strings out;
  for (const auto& item : std::get<Strings>(v)) {
    out.push_back(row.long_flag());
    out.push_back(item);
  }
  return out;
}

// Sets `row` to `value` through each source in turn (the others left at
// their defaults) and runs `check` on the Config each gives.
void set_from_each_source(const Config& base, const Setting& row, const SettingValue& value,
                          const std::function<void(const Config&)>& check) {
  ASSERT_NE(value, row.default_value) << row.name << ": the sample must not be the default";
  {
    SCOPED_TRACE(row.name + " from the file");
    auto dot = row.name.find('.');
    // An application setting as a key of its table ([demo] redis = ...).
    TempFile file(dot == std::string::npos
                      ? row.name + " = " + as_toml(value) + "\n"
                      : "[" + row.name.substr(0, dot) + "]\n" + row.name.substr(dot + 1) + " = " +
                            as_toml(value) + "\n");
    check(parse_config({"prog", "--config", file.path()}, Env{}.fn(), base));
  }
  {
    SCOPED_TRACE(row.name + " from " + row.env_var());
    Env env{{{row.env_var(), as_env(value)}}};
    check(parse_config({"prog"}, env.fn(), base));
  }
  {
    SCOPED_TRACE(row.name + " from " + row.long_flag());
    Strings args{"prog"};
    for (auto& a : as_args(row, value)) args.push_back(a);
    check(parse_config(args, Env{}.fn(), base));
  }
}

TEST(Settings, NamesFollowTheTable) {
  const auto& row = Config{}.setting("max_in_flight");
  EXPECT_EQ(row.env_var(), "BRUBECK_MAX_IN_FLIGHT");
  EXPECT_EQ(row.long_flag(), "--max-in-flight");
  EXPECT_EQ(Config{}.setting("send_specs").long_flag(), "--send-spec");
  EXPECT_EQ(Config{}.setting("pin_threads").long_flag(), "--pin");
  EXPECT_EQ(Config{}.setting("pin_threads").negated_flag(), "--no-pin");
  EXPECT_EQ(Config{}.setting("stack_guard").negated_flag(), "--no-stack-guard");
}

// Every row, from the file, the environment and the command line, lands in
// its own typed field (a row bound to another field fails its check).
TEST(Settings, EveryKeyFromEverySource) {
  const auto& samples = framework_samples();
  EXPECT_EQ(samples.size(), settings().size()) << "a row without a sample, or a sample too many";
  for (const auto& row : settings()) {
    auto it = samples.find(row.name);
    ASSERT_NE(it, samples.end()) << row.name << " has no sample in this test";
    // live_route needs metrics_route (the next test): tried with it set.
    Config base;
    if (row.name == "live_route") base.metrics_route = "/metrics";
    set_from_each_source(base, row, it->second.value, it->second.check);
  }
}

// The two settings the README listed and the file refused.
TEST(Settings, FileTakesMaxInFlightAndMaxHeaderBytes) {
  TempFile file("max_in_flight = 100\nmax_header_bytes = 8192\n");
  auto c = parse_config({"prog", "--config", file.path()}, Env{}.fn());
  EXPECT_EQ(c.max_in_flight, 100u);
  EXPECT_EQ(c.max_header_bytes, 8192u);
}

TEST(Settings, ReadmeTableIsTheGeneratedOne) {
  auto readme = read_file(source_dir() + "/README.md");
  auto section = readme.find("\n## Configuration and the shard count\n");
  ASSERT_NE(section, std::string::npos);
  auto start = readme.find("\n|", section);
  ASSERT_NE(start, std::string::npos);
  ++start;
  // The table: consecutive lines starting with '|'.
  auto end = start;
  while (end < readme.size() && readme[end] == '|') {
    auto nl = readme.find('\n', end);
    end = nl == std::string::npos ? readme.size() : nl + 1;
  }
  auto expected = settings_markdown();
  EXPECT_EQ(readme.substr(start, end - start), expected)
      << "README.md's configuration table differs from the settings table; the generated one is "
         "in "
      << write_expected("settings-table.md", expected);
}

TEST(Settings, ExampleFileIsTheGeneratedOne) {
  auto expected = settings_example_toml();
  EXPECT_EQ(read_file(source_dir() + "/config/brubeck.example.toml"), expected)
      << "config/brubeck.example.toml differs from the settings table; the generated one is in "
      << write_expected("brubeck.example.toml", expected);
}

TEST(Settings, ConfigurationReferenceIsTheGeneratedOne) {
  auto expected = settings_reference();
  EXPECT_EQ(read_file(source_dir() + "/docs/configuration.md"), expected)
      << "docs/configuration.md differs from the settings table; the generated one is in "
      << write_expected("configuration.md", expected);
}

// The example file sets every key, each to its default.
TEST(Settings, ExampleFileLoadsToTheDefaults) {
  auto path = source_dir() + "/config/brubeck.example.toml";
  auto c = parse_config({"prog", "--config", path}, Env{}.fn());
  Config defaults;
  auto text = read_file(path);
  for (const auto& row : settings()) {
    EXPECT_NE(text.find("\n" + row.name + " = "), std::string::npos) << row.name;
    EXPECT_EQ(row.get(c), row.get(defaults)) << row.name;
  }
  EXPECT_EQ(c.max_in_flight, defaults.max_in_flight);
  EXPECT_EQ(c.max_header_bytes, defaults.max_header_bytes);
  EXPECT_EQ(c.grace, defaults.grace);
  EXPECT_EQ(c.send_specs, defaults.send_specs);
  EXPECT_EQ(c.pin_threads, defaults.pin_threads);
}

// The health route is a local path, or empty (none).
TEST(Settings, HealthRouteIsALocalPathOrNothing) {
  for (const std::string bad : {"healthz", "/health z", "/healthz?x=1", "http://x/healthz"}) {
    EXPECT_THROW(parse_config({"prog", "--health-route", bad}, Env{}.fn()), ConfigError) << bad;
  }
  EXPECT_EQ(parse_config({"prog", "--health-route", "/-/ready"}, Env{}.fn()).health_route,
            "/-/ready");
  EXPECT_EQ(parse_config({"prog", "--health-route", ""}, Env{}.fn()).health_route, "");
}

// The live page's route is a local path, or empty (none); it charts
// metrics_route, so without that the configuration is refused, naming both.
TEST(Settings, LiveRouteIsALocalPathAndNeedsMetricsRoute) {
  for (const std::string bad : {"live", "/li ve", "/live?x=1"}) {
    EXPECT_THROW(
        parse_config({"prog", "--metrics-route", "/metrics", "--live-route", bad}, Env{}.fn()),
        ConfigError)
        << bad;
  }
  EXPECT_EQ(parse_config({"prog", "--metrics-route", "/m", "--live-route", "/live"}, Env{}.fn())
                .live_route,
            "/live");
  EXPECT_EQ(parse_config({"prog"}, Env{}.fn()).live_route, "");
  try {
    parse_config({"prog", "--live-route", "/live"}, Env{}.fn());
    ADD_FAILURE() << "live_route without metrics_route was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("live_route = \"/live\" needs metrics_route"),
              std::string::npos)
        << e.what();
  }
}

// The login URL is a local path (a redirect target), the session Redis a
// host:port, the session store one of three.
TEST(Settings, SessionAndLoginValuesAreChecked) {
  for (const Strings& bad :
       {Strings{"--login-url", "https://evil.example/login"}, Strings{"--login-url", "/login?x=1"},
        Strings{"--login-url", ""}, Strings{"--session-redis", "localhost"},
        Strings{"--session-redis", "host:port"}, Strings{"--session-store", "files"}}) {
    Strings args{"prog"};
    args.insert(args.end(), bad.begin(), bad.end());
    EXPECT_THROW(parse_config(args, Env{}.fn()), ConfigError) << bad[0] << " " << bad[1];
  }
  auto c = parse_config({"prog", "--login-url", "/account/login", "--session-redis", "redis:6380"},
                        Env{}.fn());
  EXPECT_EQ(c.login_url, "/account/login");
  EXPECT_EQ(c.session_redis, "redis:6380");
}

TEST(Settings, PinningIsOffUnlessAsked) {
  EXPECT_FALSE(Config{}.pin_threads);
  EXPECT_FALSE(parse_config({"prog"}, Env{}.fn()).pin_threads);
  EXPECT_TRUE(parse_config({"prog", "--pin"}, Env{}.fn()).pin_threads);
  EXPECT_FALSE(parse_config({"prog", "--no-pin"}, Env{}.fn()).pin_threads);
  EXPECT_TRUE(parse_config({"prog"}, Env{{{"BRUBECK_PIN_THREADS", "1"}}}.fn()).pin_threads);
  EXPECT_FALSE(
      parse_config({"prog", "--no-pin"}, Env{{{"BRUBECK_PIN_THREADS", "1"}}}.fn()).pin_threads);
}

std::string error_of(const Strings& args, const Env& env, const Config& base = {}) {
  try {
    parse_config(args, env.fn(), base);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

void expect_has(const std::string& text, const std::string& needle) {
  EXPECT_NE(text.find(needle), std::string::npos) << "'" << needle << "' not in: " << text;
}

// --print-config-reference prints the reference with the application's rows.
TEST(Settings, PrintConfigReferenceIncludesApplicationSettings) {
  Config base;
  base.add_setting<std::string>({.name = "demo.redis", .help = "Redis host:port"});
  try {
    parse_config({"prog", "--print-config-reference"}, Env{}.fn(), base);
    ADD_FAILURE() << "no ConfigHelp";
  } catch (const ConfigHelp& help) {
    EXPECT_EQ(help.text, settings_reference(base));
    expect_has(help.text, "\n### `demo.redis`\n\nRedis host:port.\n");
    expect_has(help.text, "- environment: `BRUBECK_DEMO_REDIS`");
    expect_has(help.text, "\n### `shards`\n");
  }
}

// The reference has a section per row, with its spellings, default and details.
TEST(Settings, ReferenceDescribesEveryRow) {
  auto reference = settings_reference();
  for (const auto& row : settings()) {
    SCOPED_TRACE(row.name);
    auto at = reference.find("\n### `" + row.name + "`\n");
    ASSERT_NE(at, std::string::npos);
    auto end = reference.find("\n### ", at + 1);
    auto section = reference.substr(at, end == std::string::npos ? end : end - at);
    expect_has(section, row.help.substr(1));
    expect_has(section, "- default: " + row.docs_default() + "\n");
    expect_has(section, "- accepted: " + row.expected() + "\n");
    expect_has(section, "- environment: `" + row.env_var() + "`");
    expect_has(section, "- command line: ");
    expect_has(section, row.long_flag() + "`");
    if (!row.details.empty()) expect_has(section, row.details);
  }
}

// A bad value from each source names the key, the source and what the key
// expects: every row from the file (a value of the wrong type), and from the
// environment and the command line where text can be wrong for it.
TEST(Settings, BadValueNamesKeySourceAndExpectation) {
  for (const auto& row : settings()) {
    SCOPED_TRACE(row.name);
    std::string bad_toml = row.type == SettingType::text ? "7" : "\"not-this\"";
    TempFile file("# a comment\n\n" + row.name + " = " + bad_toml + "\n");
    auto message = error_of({"prog", "--config", file.path()}, Env{});
    expect_has(message, row.name);
    expect_has(message, file.path() + ":3");
    expect_has(message, "expected " + row.expected());

    bool text_can_be_bad = row.type != SettingType::text || !row.choices.empty();
    if (row.type == SettingType::list && !row.accepts) text_can_be_bad = false;
    if (!text_can_be_bad) continue;
    message = error_of({"prog"}, Env{{{row.env_var(), "not-this"}}});
    expect_has(message, row.name);
    expect_has(message, row.env_var());
    expect_has(message, "expected " + row.expected());
    if (row.type == SettingType::boolean) continue;  // flags take no value
    message = error_of({"prog", row.long_flag(), "not-this"}, Env{});
    expect_has(message, row.name);
    expect_has(message, "command line " + row.long_flag());
    expect_has(message, "expected " + row.expected());
  }
  // Out of range, not only of the wrong type.
  auto message = error_of({"prog", "--max-in-flight", "0"}, Env{});
  expect_has(message, "--max-in-flight");
  expect_has(message, "expected an integer of at least 1");
  message = error_of({"prog"}, Env{{{"BRUBECK_SHARDS", "2000"}}});
  expect_has(message, "BRUBECK_SHARDS");
  expect_has(message, "from 0 to 1024");
}

TEST(Settings, UnknownKeyNamesFileAndLine) {
  TempFile file("shards = 2\nshard = 2\n");
  auto message = error_of({"prog", "--config", file.path()}, Env{});
  expect_has(message, "unknown key 'shard'");
  expect_has(message, file.path() + ":2");
  TempFile table("[demo]\nredis = \"x\"\n");
  expect_has(error_of({"prog", "--config", table.path()}, Env{}), "unknown key 'demo'");
}

// An application's own settings, of every type, from every source, typed.
Config app_base() {
  Config c;
  c.add_setting<std::string>({.name = "demo.redis", .help = "Redis host:port"});
  c.add_setting<std::size_t>(
      {.name = "demo.pg_pool", .help = "pool size", .default_value = 8, .min = 1, .max = 90});
  c.add_setting<bool>({.name = "demo.faults", .help = "fault routes"});
  c.add_setting<Strings>({.name = "demo.peers", .help = "peers"});
  c.add_setting<std::chrono::milliseconds>({.name = "demo.poll_ms", .help = "poll", .max = 1000});
  return c;
}

TEST(Settings, ApplicationSettingsFromEverySource) {
  auto base = app_base();
  const std::map<std::string, Sample> samples = {
      {"demo.redis",
       {std::string("127.0.0.1:6389"),
        [](const Config& c) { EXPECT_EQ(c.get<std::string>("demo.redis"), "127.0.0.1:6389"); }}},
      {"demo.pg_pool",
       {std::uint64_t{60},
        [](const Config& c) { EXPECT_EQ(c.get<std::size_t>("demo.pg_pool"), 60u); }}},
      {"demo.faults", {true, [](const Config& c) { EXPECT_TRUE(c.get<bool>("demo.faults")); }}},
      {"demo.peers",
       {Strings{"a", "b"},
        [](const Config& c) {
          EXPECT_EQ(c.get<Strings>("demo.peers"), (Strings{"a", "b"}));
        }}},
      {"demo.poll_ms", {std::uint64_t{250}, [](const Config& c) {
                          EXPECT_EQ(c.get<std::chrono::milliseconds>("demo.poll_ms"), 250ms);
                        }}}};
  ASSERT_EQ(base.app_settings().size(), samples.size());
  for (const auto& row : base.app_settings())
    set_from_each_source(base, row, samples.at(row.name).value, samples.at(row.name).check);

  EXPECT_EQ(base.setting("demo.pg_pool").env_var(), "BRUBECK_DEMO_PG_POOL");
  EXPECT_EQ(base.setting("demo.pg_pool").long_flag(), "--demo-pg-pool");
  auto c = parse_config({"prog"}, Env{}.fn(), base);
  EXPECT_EQ(c.get<std::size_t>("demo.pg_pool"), 8u);
  EXPECT_EQ(c.get<std::string>("demo.redis"), "");
  EXPECT_EQ(c.get<std::size_t>("shards"), c.shards);
  // Dotted keys at the top level are the same table.
  TempFile dotted("demo.pg_pool = 12\n");
  EXPECT_EQ(parse_config({"prog", "--config", dotted.path()}, Env{}.fn(), base)
                .get<std::size_t>("demo.pg_pool"),
            12u);
  expect_has(error_of({"prog", "--demo-pg-pool", "91"}, Env{}, base), "demo.pg_pool");
  EXPECT_THROW(c.get<std::string>("demo.pg_pool"), std::logic_error);
  EXPECT_THROW(c.get<std::string>("demo.nothing"), std::logic_error);
  EXPECT_THROW(base.add_setting<bool>({.name = "demo.faults"}), std::logic_error);
  EXPECT_THROW(base.add_setting<bool>({.name = "shards"}), std::logic_error);
  EXPECT_THROW(base.add_setting<bool>({.name = "demo"}), std::logic_error);
  EXPECT_THROW(base.add_setting<bool>({.name = "Demo.X"}), std::logic_error);
  // Their rows join the generated docs.
  expect_has(settings_markdown(base), "| Redis host:port | `demo.redis` | `BRUBECK_DEMO_REDIS` |");
  expect_has(settings_example_toml(base), "\ndemo.pg_pool = 8\n");
  expect_has(settings_reference(base), "\n### `demo.pg_pool`\n\nPool size.\n");
}

// load_config exits 2 on a bad file named by BRUBECK_CONFIG, and reads a good one.
TEST(SettingsDeathTest, LoadConfigExitsTwoOnABadFileFromBrubeckConfig) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TempFile bad("max_in_flight = -3\n");
  TempFile good("max_in_flight = 321\n");
  char prog[] = "prog";
  char* argv[] = {prog, nullptr};
  EXPECT_EXIT(
      {
        ::setenv("BRUBECK_CONFIG", bad.path().c_str(), 1);
        load_config(1, argv);
        std::exit(0);
      },
      testing::ExitedWithCode(2), "configuration error: config file .*:1: max_in_flight");
  EXPECT_EXIT(
      {
        ::setenv("BRUBECK_CONFIG", good.path().c_str(), 1);
        std::exit(load_config(1, argv).max_in_flight == 321 ? 7 : 1);
      },
      testing::ExitedWithCode(7), "");
}

}  // namespace
}  // namespace brubeck

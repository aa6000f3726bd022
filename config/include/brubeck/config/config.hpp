// The typed configuration of a brubeck process, read from (lowest to highest
// precedence) built-in defaults, a TOML file, BRUBECK_* environment variables
// and the command line, then validated, so a bad value stops the process at
// start with a message naming the setting, where it came from and what was
// expected.
//
// Every setting is one row of one table (settings()): its name, type,
// default, accepted range, help, and the Config field it fills. The file
// keys, environment variables, command-line flags, validation, --help, the
// README's table, docs/configuration.md and config/brubeck.example.toml all
// come from those rows, so a setting cannot be documented in one place and refused in another.
// An application adds rows of its own (Config::add_setting) before parsing
// and reads them typed (Config::get, App::setting).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace brubeck {

struct Config;

// How a setting is spelt in a file, the environment and on the command line.
enum class SettingType { boolean, count, text, list, milliseconds, microseconds };

// A value of any setting; durations are held as a count of their unit.
using SettingValue = std::variant<bool, std::uint64_t, std::string, std::vector<std::string>>;

// What is declared about one setting, typed. T is bool, std::size_t,
// std::string, std::vector<std::string>, std::chrono::milliseconds or
// std::chrono::microseconds. Its name is its TOML key: "demo.redis" is key
// `redis` of table `[demo]`, environment variable BRUBECK_DEMO_REDIS and flag
// --demo-redis. Field order matters to designated initializers.
template <class T>
struct SettingSpec {
  std::string name{};
  std::string help{};  // one line: --help, the README, the example file
  T default_value{};
  // Counts and durations (in their unit): the accepted range. Lists: the
  // fewest items.
  std::uint64_t min = 0;
  std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  std::vector<std::string> choices{};  // text: the only accepted values (empty: any)
  // Text, and each item of a list: a rule beyond `choices`, and how it reads
  // in an error ("ZeroMQ endpoints (tcp://, ipc:// or inproc://)").
  std::function<bool(std::string_view)> accepts{};
  std::string accepts_text{};
  std::string default_text{};  // docs, when the value alone says too little
  std::string flag{};          // "--send-spec": when not derived from the name
  char short_flag = 0;         // 's': also -s
  bool bytes = false;          // a count of bytes: docs add KiB/MiB
  std::string details{};       // docs/configuration.md: more than the help line
};

// One row of the table, its type erased; `set` and `get` bind it to the
// Config field (or application value) it stands for.
struct Setting {
  std::string name;
  std::string help;
  SettingType type = SettingType::text;
  SettingValue default_value;
  std::uint64_t min = 0;
  std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  std::vector<std::string> choices;
  std::function<bool(std::string_view)> accepts;
  std::string accepts_text;
  std::string default_text;
  std::string flag;
  char short_flag = 0;
  bool bytes = false;
  std::string details;
  std::function<void(Config&, const SettingValue&)> set;
  std::function<SettingValue(const Config&)> get;

  // BRUBECK_ + the name in capitals, '.' as '_'.
  std::string env_var() const;
  // The long flag: `flag`, or "--" + the name with '_' and '.' as '-'.
  std::string long_flag() const;
  // Booleans: the flag that sets false ("--no-pin" for "--pin").
  std::string negated_flag() const;
  // What a valid value looks like ("an integer from 0 to 1024").
  std::string expected() const;
  // True when `value` is of this row's type and within its rules.
  bool accepts_value(const SettingValue& value) const;
  // The value as TOML / as the docs show it.
  std::string toml_text(const SettingValue& value) const;
  std::string docs_default() const;
};

namespace detail {

template <class T>
struct SettingTraits;
template <>
struct SettingTraits<bool> {
  static constexpr SettingType type = SettingType::boolean;
  static SettingValue to(bool v) { return v; }
  static bool from(const SettingValue& v) { return std::get<bool>(v); }
};
template <>
struct SettingTraits<std::uint64_t> {
  static constexpr SettingType type = SettingType::count;
  static SettingValue to(std::uint64_t v) { return v; }
  static std::uint64_t from(const SettingValue& v) { return std::get<std::uint64_t>(v); }
};
template <>
struct SettingTraits<std::string> {
  static constexpr SettingType type = SettingType::text;
  static SettingValue to(const std::string& v) { return v; }
  static std::string from(const SettingValue& v) { return std::get<std::string>(v); }
};
template <>
struct SettingTraits<std::vector<std::string>> {
  static constexpr SettingType type = SettingType::list;
  static SettingValue to(const std::vector<std::string>& v) { return v; }
  static std::vector<std::string> from(const SettingValue& v) {
    return std::get<std::vector<std::string>>(v);
  }
};
template <>
struct SettingTraits<std::chrono::milliseconds> {
  static constexpr SettingType type = SettingType::milliseconds;
  static SettingValue to(std::chrono::milliseconds v) {
    return static_cast<std::uint64_t>(v.count());
  }
  static std::chrono::milliseconds from(const SettingValue& v) {
    return std::chrono::milliseconds(std::get<std::uint64_t>(v));
  }
};
template <>
struct SettingTraits<std::chrono::microseconds> {
  static constexpr SettingType type = SettingType::microseconds;
  static SettingValue to(std::chrono::microseconds v) {
    return static_cast<std::uint64_t>(v.count());
  }
  static std::chrono::microseconds from(const SettingValue& v) {
    return std::chrono::microseconds(std::get<std::uint64_t>(v));
  }
};

// The row for `spec`, bound through `set` and `get`.
template <class T>
Setting make_setting(SettingSpec<T> spec, std::function<void(Config&, const SettingValue&)> set,
                     std::function<SettingValue(const Config&)> get) {
  Setting s;
  s.name = std::move(spec.name);
  s.help = std::move(spec.help);
  s.type = SettingTraits<T>::type;
  s.default_value = SettingTraits<T>::to(spec.default_value);
  s.min = spec.min;
  s.max = spec.max;
  s.choices = std::move(spec.choices);
  s.accepts = std::move(spec.accepts);
  s.accepts_text = std::move(spec.accepts_text);
  s.default_text = std::move(spec.default_text);
  s.flag = std::move(spec.flag);
  s.short_flag = spec.short_flag;
  s.bytes = spec.bytes;
  s.details = std::move(spec.details);
  s.set = std::move(set);
  s.get = std::move(get);
  return s;
}

}  // namespace detail

struct Config {
  // Mongrel2's send_spec endpoints: the router connects a PULL to each.
  std::vector<std::string> send_specs{"tcp://127.0.0.1:9997"};
  // Mongrel2's recv_spec endpoints: every shard's PUB connects to each.
  std::vector<std::string> recv_specs{"tcp://127.0.0.1:9996"};
  std::size_t shards = 0;               // 0: one per core
  std::size_t stack_size = 128 * 1024;  // bytes per fiber stack
  // A guard page under every fiber stack (an overflow crashes loudly). Off,
  // a process can hold far more fibers than vm.max_map_count / 2.
  bool stack_guard = true;
  std::chrono::milliseconds grace{5000};   // in-flight requests get this long at shutdown
  std::chrono::microseconds idle_poll{0};  // shard busy-poll before sleeping
  std::size_t pub_hwm = 100000;            // replies queued per shard before drops
  // Requests per shard at once; more are answered 503 + Retry-After. Behind
  // Mongrel2 (at most 10,240 connections) 2,048 can be reached by one shard,
  // and 2,048 fibers per shard keep up to 15 shards under the kernel's map
  // limit for guarded stacks (about 32,000 fibers per process).
  std::size_t max_in_flight = 2048;
  // Larger request headers (as the frame carries them): 431. Mongrel2 1.12
  // answers 400 itself to a request head over about 4 KiB, which makes
  // frames of at most about 8 KiB: this limit is for other senders.
  std::size_t max_header_bytes = 8 * 1024;
  // A fiber running this long without waiting holds up its whole shard:
  // reported and counted (0: not checked).
  std::chrono::milliseconds stall{100};
  // Pin shard k to core k % cores. Off by default: Mongrel2 (and usually a
  // database) shares the host, and pinned shards fight them for the cores
  // (2 pinned shards on a shared 2-core host: 0.72x the unpinned ones).
  bool pin_threads = false;
  std::string log_level = "info";
  // The access log: "" (none), "-" (standard output) or a file, opened
  // again on SIGHUP; its format ("combined" or "json"); and one request in
  // access_log_sample logged (1: all, 0: none).
  std::string access_log;
  std::string access_log_format = "combined";
  std::size_t access_log_sample = 1;
  // The path the App serves its metrics on, in Prometheus' text format; ""
  // (default): none.
  std::string metrics_route;
  // Signs secure cookies with the first, accepts any (key rotation); each at
  // least 16 bytes. Empty: secure cookies are unavailable.
  std::vector<std::string> cookie_secrets;
  std::size_t max_body_bytes = 64 * 1024 * 1024;  // larger request bodies: 413
  // Mongrel2's chroot folder (its upload paths are relative to it) and the
  // folder its upload.temp_store spools to; default <chroot>/tmp.
  std::string mongrel2_chroot;
  std::string upload_store;
  // A request still running after this is cancelled at its next wait and
  // answered 504 (a route may set its own); 0: no limit.
  std::chrono::milliseconds request_timeout{60000};
  // The path of the health route ("/healthz"), answered by the App before
  // any route of the application; empty: none (public routes show nothing).
  std::string health_route;
  // The path of the live metrics page ("/live"): a page charting
  // metrics_route every second with uPlot (embedded in the library), its
  // script and style under this path; empty: none. Needs metrics_route.
  std::string live_route;
  // offload(): worker threads (0: four per core) and jobs queued before 503.
  std::size_t offload_threads = 0;
  std::size_t offload_queue = 1024;
  // The Mustache templates' folder (every *.mustache under it; see
  // brubeck::use_templates); empty: none. With templates_reload (for
  // development) a changed file is read again, looked for once a second.
  std::string templates;
  bool templates_reload = false;
  // Sessions (apps: use_sessions): the store ("memory", "sqlite", "redis"),
  // its file or server, how long an unchanged session lives, and whether
  // its cookie is for HTTPS only.
  std::string session_store = "sqlite";
  std::string session_sqlite = "brubeck-sessions.db";
  std::string session_redis = "127.0.0.1:6379";
  std::size_t session_ttl_s = 14 * 24 * 3600;
  bool session_secure_cookie = false;
  // Login (apps: use_users): where pages needing a user send the browser,
  // and the SQLite file of the users.
  std::string login_url = "/login";
  std::string users_sqlite = "brubeck-users.db";

  // upload_store, or <mongrel2_chroot>/tmp when only the chroot is set.
  std::string upload_store_path() const;

  // shards, or the number of cores when shards is 0.
  std::size_t shard_count() const noexcept;

  // Declares an application setting (before parse_config/load_config fill
  // this Config): `config.add_setting<std::string>({.name = "demo.redis",
  // .help = "Redis host:port"});`. Its value is the default until a source
  // sets it. Throws std::logic_error for a name already taken or not of
  // lower-case letters, digits, '_' and '.'.
  template <class T>
  void add_setting(SettingSpec<T> spec) {
    using Traits = detail::SettingTraits<T>;
    std::string name = spec.name;
    check_new_setting_name(name);
    app_values_[name] = Traits::to(spec.default_value);
    app_settings_.push_back(detail::make_setting(
        std::move(spec), [name](Config& c, const SettingValue& v) { c.app_values_[name] = v; },
        [name](const Config& c) { return c.app_values_.at(name); }));
  }

  // The value of any setting, the framework's or the application's, typed:
  // `config.get<std::string>("demo.redis")`, `config.get<std::size_t>("shards")`.
  // Throws std::logic_error for an unknown name or the wrong type.
  template <class T>
  T get(std::string_view name) const {
    const Setting& row = setting(name);
    if (row.type != detail::SettingTraits<T>::type)
      throw std::logic_error("Config::get: setting '" + row.name + "' is of another type");
    return detail::SettingTraits<T>::from(row.get(*this));
  }

  // The row named `name` (framework's or application's); throws
  // std::logic_error when there is none.
  const Setting& setting(std::string_view name) const;
  // The application's rows, in the order they were added.
  const std::vector<Setting>& app_settings() const noexcept { return app_settings_; }

 private:
  void check_new_setting_name(const std::string& name) const;

  std::vector<Setting> app_settings_;
  std::map<std::string, SettingValue, std::less<>> app_values_;
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The framework's own rows, in documentation order.
const std::vector<Setting>& settings();
// The framework's rows, then `config`'s application rows.
std::vector<Setting> settings(const Config& config);

// The README's configuration table (header and one line per row of
// settings(config)), each line ending in '\n'.
std::string settings_markdown(const Config& config = {});
// A TOML file setting every key of settings(config) to its default, each
// with its help as a comment (config/brubeck.example.toml).
std::string settings_example_toml(const Config& config = {});
// The configuration reference (docs/configuration.md; --print-config-reference
// prints it): how settings are read, then every row of settings(config) with
// its type, default, accepted values, file key, environment variable, flags
// and details.
std::string settings_reference(const Config& config = {});

// Throws ConfigError describing the first invalid value (for a Config built
// in code; parse_config checks each value as it reads it, naming its source).
void validate(const Config& config);

// Reads the file (if --config or BRUBECK_CONFIG names one), the environment
// (through `getenv`) and `args` (args[0] is the program name) into `base`
// (a default Config, plus any application settings it declares). Throws
// ConfigError; "--help", "--print-config-table", "--print-example-config"
// and "--version" ("NAME (brubeck X.Y.Z)", NAME being args[0]'s file name)
// throw ConfigHelp carrying the text to print.
struct ConfigHelp {
  std::string text;
};
Config parse_config(const std::vector<std::string>& args,
                    const std::function<const char*(const char*)>& getenv = nullptr,
                    Config base = {});

// For main(): parse_config on the real argv and environment; prints help
// (exit 0) or the error (exit 2) itself.
Config load_config(int argc, char** argv, Config base = {});

}  // namespace brubeck

#include "brubeck/config/config.hpp"
#include "brubeck/version.hpp"

#include <toml++/toml.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

namespace brubeck {

std::string Config::upload_store_path() const {
  if (!upload_store.empty() || mongrel2_chroot.empty()) return upload_store;
  return mongrel2_chroot + "/tmp";
}

std::size_t Config::shard_count() const noexcept {
  if (shards != 0) return shards;
  auto n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

namespace {

// A path of this server's own: it starts with '/' and has no query,
// fragment, blank or backslash (the routes' and login_url's settings).
bool is_local_path(std::string_view s) {
  return !s.empty() && s[0] == '/' && s.find_first_of("?# \\\t\r\n") == std::string_view::npos;
}

constexpr std::uint64_t kNoMax = std::numeric_limits<std::uint64_t>::max();

bool valid_endpoint(std::string_view spec) {
  for (std::string_view scheme : {"tcp://", "ipc://", "inproc://"})
    if (spec.starts_with(scheme) && spec.size() > scheme.size()) return true;
  return false;
}

// A row bound to a field of Config; its default is that field's initializer,
// so the struct stays the one place a framework default is written.
template <class T, class Field>
Setting field(Field Config::*member, SettingSpec<T> spec) {
  static_assert(std::is_same_v<T, Field>);
  spec.default_value = Config{}.*member;
  return detail::make_setting<T>(
      std::move(spec),
      [member](Config& c, const SettingValue& v) { c.*member = detail::SettingTraits<T>::from(v); },
      [member](const Config& c) { return detail::SettingTraits<T>::to(c.*member); });
}

using Count = std::uint64_t;
using Text = std::string;
using List = std::vector<std::string>;
using Ms = std::chrono::milliseconds;
using Us = std::chrono::microseconds;

// What docs/configuration.md says of a setting beyond its help line, by
// name: kept apart from the rows so that adding a row touches only its own.
std::vector<Setting> with_details(std::vector<Setting> rows) {
  static const std::map<std::string_view, std::string_view> details = {
      {"shards",
       "Each shard is a thread with its own fiber hub, route table and reply socket, and every "
       "message of a connection goes to the same shard. With one shard there is no router thread: "
       "the shard pulls from Mongrel2 itself."},
      {"send_specs",
       "The same endpoints as the `send_spec` of the Mongrel2 handler this process serves; several "
       "Mongrel2 servers, several endpoints. Every handler process connected to one gets a share "
       "of its requests (round robin)."},
      {"recv_specs",
       "The `recv_spec` of the same Mongrel2 handler. Each shard's publishing socket connects to "
       "every endpoint and waits (at most 3 s) for Mongrel2's subscription before serving."},
      {"stack_size",
       "Every request's fiber gets a stack of this size, recycled per shard. Deep recursion or "
       "large locals on the stack need more."},
      {"stack_guard",
       "An overflowing fiber then hits the guard page and the process ends with a message saying "
       "so, instead of corrupting memory. Each guarded stack costs two kernel memory maps, so with "
       "Linux's default `vm.max_map_count` a process holds about 32,000 fibers at once; turn this "
       "off (or raise `vm.max_map_count`) to hold more."},
      {"grace_ms",
       "On SIGINT or SIGTERM the process stops pulling requests, lets those in flight finish "
       "within this time, answers the ones still running 503 (`Retry-After: 1`, connection closed) "
       "and exits."},
      {"idle_poll_us",
       "A shard with nothing to do spins this long before it sleeps in `epoll_wait`: a message "
       "from another thread (an actor's reply, an offloaded job's result) that arrives meanwhile "
       "costs no wake-up. It burns CPU the host may need for Mongrel2."},
      {"pub_hwm",
       "The high-water mark of each shard's reply socket to Mongrel2. Past it ZeroMQ drops "
       "replies; the shard counts them (`ShardStats::dropped_replies`)."},
      {"pin_threads",
       "Pin only when the process owns its cores (Mongrel2 and the databases on other hosts or "
       "other cores): on a shared 2-core host, 2 pinned shards served 0.72x the requests per "
       "second of a minimal C handler through the same Mongrel2, 2 unpinned ones 1.02x."},
      {"cookie_secrets",
       "Signed cookies (`set_secure_cookie`) and sessions need at least one. Add a new secret "
       "first and keep the old ones for a while to rotate keys: cookies signed with any of them "
       "still verify."},
      {"max_body_bytes",
       "Checked on the inline body of a frame and on what a handler accepts of an upload Mongrel2 "
       "spooled to a file (`accept_upload`); also the limit of a multipart file part."},
      {"mongrel2_chroot",
       "Mongrel2 names the files of spooled uploads relative to its chroot; set this when it runs "
       "chrooted so that handlers find them."},
      {"upload_store",
       "Mongrel2's `upload.temp_store` folder, as this process sees it. Only files under it are "
       "read as uploads."},
      {"request_timeout_ms",
       "Every wait of the request's fiber and of its child fibers is bounded by the deadline; past "
       "it the wait throws `DeadlineExceeded` and the client gets 504. A route can set its own "
       "(`app.route<H>(...).timeout(...)`)."},
      {"offload_threads",
       "The pool `offload(fn)` runs blocking code on, off the shards' threads (password hashing, "
       "blocking libraries)."},
      {"offload_queue",
       "When this many jobs wait, `offload` throws `Unavailable`, which a handler lets through as "
       "503."},
      {"max_in_flight",
       "A request past the limit is answered at once (503, `Retry-After: 1`), never queued without "
       "bound. Behind Mongrel2 (at most 10,240 connections) one shard can reach 2,048, and 2,048 "
       "guarded fibers per shard keep up to 15 shards under the kernel's map limit."},
      {"max_header_bytes",
       "Answered 431 and the connection closed. Mongrel2 1.12 itself answers 400 to a request head "
       "over about 4 KiB, so its frames carry at most about 8 KiB of headers: this limit is for "
       "other senders."},
      {"stall_ms",
       "A fiber that computes without waiting holds up every other request of its shard. The shard "
       "logs it (rate-limited) with the route and how long it ran, and counts it "
       "(`ShardStats::stalls`). Move such work to `offload()`."},
      {"templates",
       "Every `*.mustache` under the folder is a template named by its relative path without the "
       "extension (apps: `use_templates`); `errors/404.mustache` and the like become the error "
       "pages. A template that does not compile stops the start."},
      {"templates_reload",
       "For development: a changed file is compiled again, off the shard's thread."},
      {"session_store",
       "`memory`: this process, every shard; `sqlite`: survives a restart; `redis`: shared by "
       "processes and hosts."},
      {"session_ttl_s", "A session unchanged for this long expires."},
      {"session_secure_cookie", "Turn it on when clients reach the site over HTTPS only."},
      {"login_url",
       "Used by pages whose handler needs a logged-in user; an `ApiHandler` answers 401 instead."},
  };
  for (auto& row : rows)
    if (auto it = details.find(row.name); it != details.end()) row.details = it->second;
  return rows;
}

const std::vector<Setting>& framework_settings() {
  static const std::vector<Setting> rows = with_details([] {
    std::vector<Setting> r;
    r.push_back(field<Count>(&Config::shards, {.name = "shards",
                                               .help = "shard threads, one fiber hub each",
                                               .max = 1024,
                                               .default_text = "0 = one per core",
                                               .short_flag = 's'}));
    r.push_back(field<List>(&Config::send_specs,
                            {.name = "send_specs",
                             .help = "Mongrel2 send_spec(s): the router pulls requests from each",
                             .min = 1,
                             .accepts = valid_endpoint,
                             .accepts_text = "ZeroMQ endpoints (tcp://, ipc:// or inproc://)",
                             .flag = "--send-spec"}));
    r.push_back(field<List>(&Config::recv_specs,
                            {.name = "recv_specs",
                             .help = "Mongrel2 recv_spec(s): every shard publishes replies to each",
                             .min = 1,
                             .accepts = valid_endpoint,
                             .accepts_text = "ZeroMQ endpoints (tcp://, ipc:// or inproc://)",
                             .flag = "--recv-spec"}));
    r.push_back(field<Count>(&Config::stack_size, {.name = "stack_size",
                                                   .help = "fiber stack bytes",
                                                   .min = 16 * 1024,
                                                   .max = 64 * 1024 * 1024,
                                                   .bytes = true}));
    r.push_back(field<bool>(
        &Config::stack_guard,
        {.name = "stack_guard",
         .help =
             "guard page under each fiber stack (off: more fibers than vm.max_map_count / 2)"}));
    r.push_back(field<Ms>(&Config::grace, {.name = "grace_ms",
                                           .help = "shutdown grace for requests in flight",
                                           .max = 60 * 60 * 1000}));
    r.push_back(field<Us>(
        &Config::idle_poll,
        {.name = "idle_poll_us", .help = "busy-poll before a shard sleeps", .max = 1000 * 1000}));
    r.push_back(field<Count>(
        &Config::pub_hwm,
        {.name = "pub_hwm", .help = "replies queued per shard before drops", .min = 1}));
    r.push_back(
        field<bool>(&Config::pin_threads,
                    {.name = "pin_threads",
                     .help = "pin shard k to core k % cores (only if the process owns them)",
                     .flag = "--pin"}));
    r.push_back(field<Text>(&Config::log_level, {.name = "log_level",
                                                 .help = "log level",
                                                 .choices = {"trace", "debug", "info", "warn",
                                                             "error", "critical", "off"}}));
    r.push_back(
        field<Text>(&Config::access_log,
                    {.name = "access_log",
                     .help = "access log: a file (opened again on SIGHUP), `-` for standard output",
                     .default_text = "none",
                     .flag = "--access-log"}));
    r.push_back(field<Text>(&Config::access_log_format, {.name = "access_log_format",
                                                         .help = "access log line format",
                                                         .choices = {"combined", "json"}}));
    r.push_back(field<Count>(
        &Config::access_log_sample,
        {.name = "access_log_sample", .help = "log one request in N (1: every one, 0: none)"}));
    r.push_back(
        field<Text>(&Config::metrics_route,
                    {.name = "metrics_route",
                     .help = "path serving Prometheus metrics (keep it off public routes)",
                     .accepts = [](std::string_view s) { return s.empty() || is_local_path(s); },
                     .accepts_text = "a local path",
                     .default_text = "none",
                     .flag = "--metrics-route"}));
    r.push_back(field<List>(&Config::cookie_secrets,
                            {.name = "cookie_secrets",
                             .help = "secure-cookie secrets (the first signs, any verifies)",
                             .accepts = [](std::string_view s) { return s.size() >= 16; },
                             .accepts_text = "secrets of at least 16 bytes",
                             .default_text = "none",
                             .flag = "--cookie-secret"}));
    r.push_back(field<Count>(&Config::max_body_bytes, {.name = "max_body_bytes",
                                                       .help = "largest request body (413 beyond)",
                                                       .min = 1,
                                                       .bytes = true}));
    r.push_back(field<Text>(&Config::mongrel2_chroot,
                            {.name = "mongrel2_chroot",
                             .help = "Mongrel2's chroot (its upload paths are relative to it)",
                             .default_text = "none"}));
    r.push_back(field<Text>(&Config::upload_store, {.name = "upload_store",
                                                    .help = "where Mongrel2 spools uploads",
                                                    .default_text = "`<chroot>/tmp`"}));
    r.push_back(
        field<Ms>(&Config::request_timeout, {.name = "request_timeout_ms",
                                             .help = "request deadline, answered 504 (0: none)",
                                             .max = 24 * 60 * 60 * 1000}));
    r.push_back(field<Text>(
        &Config::health_route,
        {.name = "health_route",
         .help = "path answering 200 when ready, 503 starting, draining or with a shard down",
         .accepts = [](std::string_view s) { return s.empty() || is_local_path(s); },
         .accepts_text = "a local path, or empty for none",
         .default_text = "none"}));
    r.push_back(
        field<Text>(&Config::live_route,
                    {.name = "live_route",
                     .help = "path of a page charting metrics_route live (needs metrics_route)",
                     .accepts = [](std::string_view s) { return s.empty() || is_local_path(s); },
                     .accepts_text = "a local path, or empty for none",
                     .default_text = "none"}));
    r.push_back(field<Count>(&Config::offload_threads, {.name = "offload_threads",
                                                        .help = "offload() worker threads",
                                                        .max = 4096,
                                                        .default_text = "0 = four per core"}));
    r.push_back(field<Count>(
        &Config::offload_queue,
        {.name = "offload_queue", .help = "offload() jobs queued before 503", .min = 1}));
    r.push_back(field<Count>(&Config::max_in_flight,
                             {.name = "max_in_flight",
                              .help = "requests in flight per shard (more: 503 + `Retry-After`)",
                              .min = 1}));
    r.push_back(
        field<Count>(&Config::max_header_bytes, {.name = "max_header_bytes",
                                                 .help = "largest request headers (431 beyond)",
                                                 .min = 1024,
                                                 .bytes = true}));
    r.push_back(field<Ms>(&Config::stall,
                          {.name = "stall_ms",
                           .help = "report a fiber that runs this long without waiting (0: off)",
                           .max = 60 * 1000}));
    r.push_back(field<Text>(&Config::templates,
                            {.name = "templates",
                             .help = "folder of Mustache templates (`*.mustache`, with `errors/`)",
                             .default_text = "none"}));
    r.push_back(field<bool>(
        &Config::templates_reload,
        {.name = "templates_reload",
         .help = "read a changed template again, checked once a second (development)"}));
    r.push_back(
        field<Text>(&Config::session_store, {.name = "session_store",
                                             .help = "where sessions live (apps: use_sessions)",
                                             .choices = {"memory", "sqlite", "redis"}}));
    r.push_back(field<Text>(&Config::session_sqlite,
                            {.name = "session_sqlite",
                             .help = "SQLite file of the sessions (session_store = sqlite)"}));
    r.push_back(field<Text>(&Config::session_redis,
                            {.name = "session_redis",
                             .help = "Redis host:port of the sessions (session_store = redis)",
                             .accepts =
                                 [](std::string_view s) {
                                   auto colon = s.rfind(':');
                                   return colon != std::string_view::npos && colon > 0 &&
                                          colon + 1 < s.size() &&
                                          s.find_first_not_of("0123456789", colon + 1) ==
                                              std::string_view::npos;
                                 },
                             .accepts_text = "host:port"}));
    r.push_back(field<Count>(&Config::session_ttl_s, {.name = "session_ttl_s",
                                                      .help = "seconds an unchanged session lives",
                                                      .min = 1,
                                                      .max = 10ull * 365 * 24 * 3600,
                                                      .default_text = "1209600 = 14 days"}));
    r.push_back(field<bool>(
        &Config::session_secure_cookie,
        {.name = "session_secure_cookie", .help = "send the session cookie over HTTPS only"}));
    r.push_back(field<Text>(&Config::login_url,
                            {.name = "login_url",
                             .help = "where a page needing a user redirects (with ?next=)",
                             .accepts = is_local_path,
                             .accepts_text = "a local path"}));
    r.push_back(field<Text>(
        &Config::users_sqlite,
        {.name = "users_sqlite", .help = "SQLite file of the users (apps: use_users)"}));
    return r;
  }());
  return rows;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

std::string toml_quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + '"';
}

std::string bytes_text(std::uint64_t n) {
  if (n >= 1024 * 1024 && n % (1024 * 1024) == 0) return std::to_string(n >> 20) + " MiB";
  if (n >= 1024 && n % 1024 == 0) return std::to_string(n >> 10) + " KiB";
  return std::to_string(n) + " bytes";
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    auto part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

[[noreturn]] void bad_value(const Setting& row, const std::string& source,
                            const std::string& shown) {
  throw ConfigError(source + ": " + row.name + " = " + shown + ": expected " + row.expected());
}

// Checks `value` against the row's rules and stores it.
void store(Config& c, const Setting& row, SettingValue value, const std::string& source) {
  if (!row.accepts_value(value)) bad_value(row, source, row.toml_text(value));
  row.set(c, value);
}

// Text from the environment or the command line, as the row's type.
SettingValue parse_text(const Setting& row, const std::string& text, const std::string& source) {
  switch (row.type) {
    case SettingType::boolean:
      if (text == "1" || text == "true") return true;
      if (text == "0" || text == "false") return false;
      bad_value(row, source, toml_quote(text));
    case SettingType::text:
      return text;
    case SettingType::list:
      return split_commas(text);
    default: {
      std::uint64_t v = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (text.empty() || ec != std::errc() || end != text.data() + text.size())
        bad_value(row, source, toml_quote(text));
      return v;
    }
  }
}

std::string show_node(const toml::node& node) {
  std::ostringstream out;
  node.visit([&](const auto& n) { out << n; });
  return out.str();
}

std::string file_source(const std::string& path, const toml::source_region& where) {
  return "config file " + path + ":" + std::to_string(where.begin.line);
}

// A TOML node as the row's type.
SettingValue from_node(const Setting& row, const toml::node& node, const std::string& source) {
  switch (row.type) {
    case SettingType::boolean:
      if (auto b = node.as_boolean()) return b->get();
      break;
    case SettingType::text:
      if (auto s = node.as_string()) return s->get();
      break;
    case SettingType::list:
      if (auto s = node.as_string()) return std::vector<std::string>{s->get()};
      if (auto arr = node.as_array()) {
        std::vector<std::string> out;
        for (const auto& item : *arr) {
          auto s = item.as_string();
          if (!s) bad_value(row, source, show_node(node));
          out.push_back(s->get());
        }
        return out;
      }
      break;
    default:
      if (auto i = node.as_integer(); i && i->get() >= 0)
        return static_cast<std::uint64_t>(i->get());
      break;
  }
  bad_value(row, source, show_node(node));
}

const Setting* find_row(const std::vector<Setting>& rows, std::string_view name) {
  for (const auto& row : rows)
    if (row.name == name) return &row;
  return nullptr;
}

bool is_table_of_rows(const std::vector<Setting>& rows, const std::string& prefix) {
  for (const auto& row : rows)
    if (row.name.starts_with(prefix + ".")) return true;
  return false;
}

void apply_table(Config& c, const std::vector<Setting>& rows, const toml::table& table,
                 const std::string& prefix, const std::string& path) {
  for (const auto& [key, node] : table) {
    std::string name =
        prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
    auto where = node.source().begin.line != 0 ? node.source() : key.source();
    if (const Setting* row = find_row(rows, name)) {
      store(c, *row, from_node(*row, node, file_source(path, where)), file_source(path, where));
    } else if (node.is_table() && is_table_of_rows(rows, name)) {
      apply_table(c, rows, *node.as_table(), name, path);
    } else {
      throw ConfigError(file_source(path, key.source()) + ": unknown key '" + name + "'");
    }
  }
}

void apply_file(Config& c, const std::vector<Setting>& rows, const std::string& path) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    auto line = e.source().begin.line;  // 0: the file could not be read at all
    throw ConfigError("config file " + path + (line > 0 ? ":" + std::to_string(line) : "") + ": " +
                      std::string(e.description()));
  }
  apply_table(c, rows, t, "", path);
}

void apply_env(Config& c, const std::vector<Setting>& rows,
               const std::function<const char*(const char*)>& getenv) {
  for (const auto& row : rows) {
    auto var = row.env_var();
    const char* v = getenv(var.c_str());
    if (v == nullptr || *v == '\0') continue;
    auto source = "environment variable " + var;
    store(c, row, parse_text(row, v, source), source);
  }
}

std::string cli_names(const Setting& row) {
  std::string names = row.long_flag();
  if (row.short_flag != 0) names = std::string("-") + row.short_flag + "," + names;
  return names;
}

std::string cli_help(const Setting& row) {
  return row.help + " [" + row.expected() + "; default " + row.toml_text(row.default_value) + "; " +
         row.name + " in the file, " + row.env_var() + "]";
}

}  // namespace

std::string Setting::env_var() const {
  std::string out = "BRUBECK_";
  for (char ch : name)
    out += ch == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

std::string Setting::long_flag() const {
  if (!flag.empty()) return flag;
  std::string out = "--";
  for (char ch : name) out += ch == '.' || ch == '_' ? '-' : ch;
  return out;
}

std::string Setting::negated_flag() const { return "--no-" + long_flag().substr(2); }

std::string Setting::expected() const {
  switch (type) {
    case SettingType::boolean:
      return "true or false";
    case SettingType::text:
      if (!choices.empty()) return "one of " + join(choices, ", ");
      return accepts_text.empty() ? "a string" : accepts_text;
    case SettingType::list: {
      std::string out = "a list of " + (accepts_text.empty() ? "strings" : accepts_text);
      if (min > 0) out += ", at least " + std::to_string(min);
      return out;
    }
    default: {
      std::string out;
      if (max != kNoMax)
        out = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
      else
        out = "an integer of at least " + std::to_string(min);
      if (type == SettingType::milliseconds) out += " (milliseconds)";
      if (type == SettingType::microseconds) out += " (microseconds)";
      if (bytes) out += " (bytes)";
      return out;
    }
  }
}

bool Setting::accepts_value(const SettingValue& value) const {
  switch (type) {
    case SettingType::boolean:
      return std::holds_alternative<bool>(value);
    case SettingType::text: {
      auto s = std::get_if<std::string>(&value);
      if (s == nullptr) return false;
      if (!choices.empty() && std::find(choices.begin(), choices.end(), *s) == choices.end())
        return false;
      return !accepts || accepts(*s);
    }
    case SettingType::list: {
      auto l = std::get_if<std::vector<std::string>>(&value);
      if (l == nullptr || l->size() < min) return false;
      for (const auto& item : *l)
        if (accepts && !accepts(item)) return false;
      return true;
    }
    default: {
      auto n = std::get_if<std::uint64_t>(&value);
      return n != nullptr && *n >= min && *n <= max;
    }
  }
}

std::string Setting::toml_text(const SettingValue& value) const {
  if (auto b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  if (auto n = std::get_if<std::uint64_t>(&value)) return std::to_string(*n);
  if (auto s = std::get_if<std::string>(&value)) return toml_quote(*s);
  std::vector<std::string> items;
  for (const auto& item : std::get<std::vector<std::string>>(value))
    items.push_back(toml_quote(item));
  return "[" + join(items, ", ") + "]";
}

std::string Setting::docs_default() const {
  if (!default_text.empty()) return default_text;
  if (auto n = std::get_if<std::uint64_t>(&default_value); n && bytes)
    return std::to_string(*n) + " (" + bytes_text(*n) + ")";
  if (auto s = std::get_if<std::string>(&default_value))
    return s->empty() ? "none" : "`" + *s + "`";
  if (auto l = std::get_if<std::vector<std::string>>(&default_value)) {
    if (l->empty()) return "none";
    std::vector<std::string> items;
    for (const auto& item : *l) items.push_back("`" + item + "`");
    return join(items, ", ");
  }
  return toml_text(default_value);
}

const Setting& Config::setting(std::string_view name) const {
  if (const Setting* row = find_row(framework_settings(), name)) return *row;
  if (const Setting* row = find_row(app_settings_, name)) return *row;
  throw std::logic_error("Config: no setting named '" + std::string(name) + "'");
}

void Config::check_new_setting_name(const std::string& name) const {
  bool ok = !name.empty() && name.front() != '.' && name.back() != '.' &&
            name.find("..") == std::string::npos;
  for (char ch : name)
    ok &= (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.';
  if (!ok)
    throw std::logic_error("Config::add_setting: '" + name +
                           "' is not a name of lower-case letters, digits, '_' and '.'");
  // A name that is also a table of others ("demo" and "demo.redis") could
  // not be written in a TOML file.
  for (const auto& row : settings(*this))
    if (row.name == name || row.name.starts_with(name + ".") || name.starts_with(row.name + "."))
      throw std::logic_error("Config::add_setting: '" + name + "' clashes with setting '" +
                             row.name + "'");
}

const std::vector<Setting>& settings() { return framework_settings(); }

std::vector<Setting> settings(const Config& config) {
  std::vector<Setting> rows = framework_settings();
  rows.insert(rows.end(), config.app_settings().begin(), config.app_settings().end());
  return rows;
}

std::string settings_markdown(const Config& config) {
  std::string out =
      "| setting | TOML key | environment | command line | default | accepted |\n"
      "|---|---|---|---|---|---|\n";
  for (const auto& row : settings(config)) {
    std::string env = "`" + row.env_var() + "`";
    std::string flags = "`" + row.long_flag() + "`";
    if (row.short_flag != 0) flags = std::string("`-") + row.short_flag + "`, " + flags;
    if (row.type == SettingType::boolean) {
      env += " (1/0)";
      flags += " / `" + row.negated_flag() + "`";
    }
    if (row.type == SettingType::list) {
      env += " (comma list)";
      flags += " (repeat)";
    }
    out += "| " + row.help + " | `" + row.name + "` | " + env + " | " + flags + " | " +
           row.docs_default() + " | " + row.expected() + " |\n";
  }
  return out;
}

std::string settings_example_toml(const Config& config) {
  std::string out =
      "# brubeck: every setting at its default, with its help. Generated from the\n"
      "# settings table (settings_example_toml(), or brubeck_demo\n"
      "# --print-example-config); tests/config checks that this file matches it.\n"
      "#\n"
      "# Precedence, lowest first: defaults, this file (--config FILE or\n"
      "# BRUBECK_CONFIG), BRUBECK_* environment variables, the command line.\n";
  for (const auto& row : settings(config)) {
    std::string flags = row.long_flag();
    if (row.short_flag != 0) flags = std::string("-") + row.short_flag + ", " + flags;
    if (row.type == SettingType::boolean) flags += " / " + row.negated_flag();
    std::string meaning;  // what the default stands for, beyond its value
    for (char ch : row.default_text)
      if (ch != '`') meaning += ch;
    std::string env = row.env_var();
    if (row.type == SettingType::list) env += " (comma list)";
    if (row.type == SettingType::list) flags += " (repeat)";
    out += "\n# " + row.help + (meaning.empty() ? "" : "; default: " + meaning) +
           ".\n# Accepted: " + row.expected() + ".\n# Environment: " + env +
           "; command line: " + flags + ".\n" + row.name + " = " +
           row.toml_text(row.default_value) + "\n";
  }
  return out;
}

namespace {

std::string type_name(const Setting& row) {
  switch (row.type) {
    case SettingType::boolean:
      return "boolean";
    case SettingType::count:
      return row.bytes ? "integer (bytes)" : "integer";
    case SettingType::text:
      return "string";
    case SettingType::list:
      return "list of strings";
    case SettingType::milliseconds:
      return "integer (milliseconds)";
    case SettingType::microseconds:
      return "integer (microseconds)";
  }
  return "";
}

}  // namespace

std::string settings_reference(const Config& config) {
  std::string out =
      "# Configuration reference\n"
      "\n"
      "<!-- Generated from the settings table (config/src/config.cpp) by\n"
      "     settings_reference(); tests/config fails when this file differs from it, and\n"
      "     writes the fresh one into the build folder. Do not edit it by hand. -->\n"
      "\n"
      "Every setting of a brubeck process is one row of one table, in `config/`: the file\n"
      "key, the environment variable, the command-line flags, the check of a value and\n"
      "this page all come from that row.\n"
      "\n"
      "## Where settings come from\n"
      "\n"
      "Lowest precedence first:\n"
      "\n"
      "1. the defaults below;\n"
      "2. a TOML file, named by `--config FILE` (`-c FILE`) or `BRUBECK_CONFIG`: one key per\n"
      "   setting; a dotted name such as `demo.redis` is key `redis` of table `[demo]` (or the\n"
      "   dotted key itself); an unknown key is an error;\n"
      "3. environment variables: `BRUBECK_` and the name in capitals, `.` as `_`; booleans\n"
      "   `1`/`0` (or `true`/`false`), lists as comma-separated items; an empty variable is\n"
      "   ignored;\n"
      "4. the command line: `--` and the name with `_` and `.` as `-` (a few have their own\n"
      "   spelling, listed below); booleans are flags with a `--no-` twin; a list's flag is\n"
      "   repeated, once per item.\n"
      "\n"
      "A bad value stops the process at start (`load_config` exits 2) with one message naming\n"
      "the setting, where the value came from (`file:line`, the environment variable or the\n"
      "flag) and what the setting accepts. `--help` lists every flag;\n"
      "`--print-example-config` prints a TOML file of every default (as\n"
      "`config/brubeck.example.toml`), `--print-config-table` the summary table below and\n"
      "`--print-config-reference` this page, each with the application's own settings.\n"
      "\n"
      "An application declares settings of its own before parsing, and they join every one\n"
      "of these (`Config::add_setting`, read typed with `Config::get` or `App::setting`):\n"
      "\n"
      "```cpp\n"
      "brubeck::Config config;\n"
      "config.add_setting<std::string>({.name = \"demo.redis\", .help = \"Redis host:port\"});\n"
      "brubeck::App app{brubeck::load_config(argc, argv, std::move(config))};\n"
      "auto redis = app.setting<std::string>(\"demo.redis\");\n"
      "```\n"
      "\n"
      "## Summary\n"
      "\n";
  out += settings_markdown(config);
  out += "\n## Settings\n";
  for (const auto& row : settings(config)) {
    std::string flags = "`" + row.long_flag() + "`";
    if (row.short_flag != 0) flags = std::string("`-") + row.short_flag + "`, " + flags;
    std::string env = "`" + row.env_var() + "`";
    if (row.type == SettingType::boolean) {
      flags += " (true), `" + row.negated_flag() + "` (false)";
      env += " (`1` or `0`)";
    }
    if (row.type == SettingType::list) {
      flags += ", once per item";
      env += " (comma-separated)";
    }
    std::string help = row.help;
    if (!help.empty())
      help[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(help[0])));
    out += "\n### `" + row.name + "`\n\n" + help + ".\n\n";
    if (!row.details.empty()) out += row.details + "\n\n";
    out += "- type: " + type_name(row) + "\n";
    out += "- default: " + row.docs_default() + "\n";
    out += "- accepted: " + row.expected() + "\n";
    out += "- file: `" + row.name + " = " + row.toml_text(row.default_value) + "`\n";
    out += "- environment: " + env + "\n";
    out += "- command line: " + flags + "\n";
  }
  return out;
}

void validate(const Config& c) {
  for (const auto& row : settings(c)) {
    auto value = row.get(c);
    if (!row.accepts_value(value))
      throw ConfigError(row.name + " = " + row.toml_text(value) + ": expected " + row.expected());
  }
  // The live page charts what metrics_route serves: without it, nothing.
  if (!c.live_route.empty() && c.metrics_route.empty())
    throw ConfigError("live_route = \"" + c.live_route +
                      "\" needs metrics_route (the page charts what it serves): set both");
}

Config parse_config(const std::vector<std::string>& args,
                    const std::function<const char*(const char*)>& getenv_fn, Config base) {
  auto getenv = getenv_fn ? getenv_fn : [](const char* n) -> const char* { return std::getenv(n); };
  const auto rows = settings(base);
  CLI::App cli{"A brubeck handler process behind Mongrel2"};
  std::string file;
  cli.add_option("-c,--config", file, "TOML configuration file (also BRUBECK_CONFIG)");
  auto* print_reference = cli.add_flag("--print-config-reference")
                              ->description("print the configuration reference (Markdown)");
  auto* print_table =
      cli.add_flag("--print-config-table")->description("print the settings as a Markdown table");
  auto* print_example =
      cli.add_flag("--print-example-config")->description("print a TOML file of the defaults");
  auto* print_version =
      cli.add_flag("--version")->description("print the program's name and brubeck's version");
  // One option (two for a boolean) per row; the text is parsed below, so an
  // error names the flag and what the setting expects.
  std::vector<std::string> texts(rows.size());
  std::vector<std::vector<std::string>> lists(rows.size());
  std::vector<CLI::Option*> options(rows.size()), negated(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    if (row.type == SettingType::boolean) {
      options[i] = cli.add_flag(cli_names(row))->description(cli_help(row));
      negated[i] = cli.add_flag(row.negated_flag())->description("sets " + row.name + " to false");
    } else if (row.type == SettingType::list) {
      options[i] = cli.add_option(cli_names(row), lists[i], cli_help(row) + " (repeatable)");
    } else {
      options[i] = cli.add_option(cli_names(row), texts[i], cli_help(row));
      if (row.type == SettingType::count) options[i]->type_name("N");
      if (row.type == SettingType::milliseconds) options[i]->type_name("MS");
      if (row.type == SettingType::microseconds) options[i]->type_name("US");
    }
  }

  std::vector<std::string> rev(args.rbegin(), args.rend() - (args.empty() ? 0 : 1));
  try {
    cli.parse(rev);
  } catch (const CLI::CallForHelp&) {
    throw ConfigHelp{cli.help()};
  } catch (const CLI::ParseError& e) {
    throw ConfigError(std::string("command line: ") + e.what());
  }
  if (print_reference->count() > 0) throw ConfigHelp{settings_reference(base)};
  if (print_table->count() > 0) throw ConfigHelp{settings_markdown(base)};
  if (print_example->count() > 0) throw ConfigHelp{settings_example_toml(base)};
  if (print_version->count() > 0) {
    std::string program = args.empty() ? "brubeck" : args[0];
    program = program.substr(program.find_last_of('/') + 1);
    throw ConfigHelp{program + " (brubeck " BRUBECK_VERSION ")\n"};
  }

  Config c = std::move(base);
  if (file.empty())
    if (const char* f = getenv("BRUBECK_CONFIG"); f && *f) file = f;
  if (!file.empty()) apply_file(c, rows, file);
  apply_env(c, rows, getenv);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    std::string source = "command line " + row.long_flag();
    if (row.type == SettingType::boolean) {
      bool yes = options[i]->count() > 0, no = negated[i]->count() > 0;
      if (yes && no)
        throw ConfigError("command line: both " + row.long_flag() + " and " + row.negated_flag() +
                          " given");
      if (yes || no) store(c, row, yes, yes ? source : "command line " + row.negated_flag());
    } else if (options[i]->count() > 0) {
      store(c, row,
            row.type == SettingType::list ? SettingValue(lists[i])
                                          : parse_text(row, texts[i], source),
            source);
    }
  }
  validate(c);
  return c;
}

Config load_config(int argc, char** argv, Config base) {
  std::vector<std::string> args(argv, argv + argc);
  try {
    return parse_config(args, nullptr, std::move(base));
  } catch (const ConfigHelp& h) {
    std::cout << h.text;
    std::exit(0);
  } catch (const ConfigError& e) {
    std::cerr << (argc > 0 ? argv[0] : "brubeck") << ": configuration error: " << e.what() << "\n";
    std::exit(2);
  }
}

}  // namespace brubeck

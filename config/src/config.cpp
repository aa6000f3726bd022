#include "brubeck/config/config.hpp"

#include <toml++/toml.h>
#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdlib>
#include <iostream>
#include <optional>
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

bool valid_endpoint(const std::string& spec) {
  for (const char* scheme : {"tcp://", "ipc://", "inproc://"})
    if (spec.rfind(scheme, 0) == 0 && spec.size() > std::string_view(scheme).size()) return true;
  return false;
}

std::size_t parse_size(const std::string& name, const std::string& text) {
  std::size_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    throw ConfigError(name + ": '" + text + "' is not a non-negative integer");
  return v;
}

std::vector<std::string> split_specs(const std::string& text) {
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

// Keys accepted in the TOML file, so a misspelt one is an error, not ignored.
const char* const kFileKeys[] = {
    "send_specs",     "recv_specs",      "shards",       "stack_size",         "grace_ms",
    "idle_poll_us",   "pub_hwm",         "pin_threads",  "log_level",          "cookie_secrets",
    "max_body_bytes", "mongrel2_chroot", "upload_store", "request_timeout_ms", "offload_threads",
    "offload_queue",  "stack_guard"};

void apply_file(Config& c, const std::string& path) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw ConfigError("config file " + path + ": " + std::string(e.description()) + " (line " +
                      std::to_string(e.source().begin.line) + ")");
  }
  for (const auto& [key, value] : t) {
    bool known = false;
    for (auto* k : kFileKeys) known |= key.str() == k;
    if (!known)
      throw ConfigError("config file " + path + ": unknown key '" + std::string(key.str()) + "'");
  }
  auto strings = [&](const char* key) -> std::optional<std::vector<std::string>> {
    auto node = t[key];
    if (!node) return std::nullopt;
    std::vector<std::string> out;
    if (auto s = node.value<std::string>()) {
      out.push_back(*s);
    } else if (auto* arr = node.as_array()) {
      for (const auto& el : *arr) {
        auto s2 = el.value<std::string>();
        if (!s2) throw ConfigError(std::string("config file: ") + key + " must hold strings");
        out.push_back(*s2);
      }
    } else {
      throw ConfigError(std::string("config file: ") + key + " must be a string or a list");
    }
    return out;
  };
  auto integer = [&](const char* key) -> std::optional<std::size_t> {
    auto node = t[key];
    if (!node) return std::nullopt;
    auto v = node.value<std::int64_t>();
    if (!v || *v < 0)
      throw ConfigError(std::string("config file: ") + key + " must be a non-negative integer");
    return static_cast<std::size_t>(*v);
  };
  if (auto v = strings("send_specs")) c.send_specs = *v;
  if (auto v = strings("recv_specs")) c.recv_specs = *v;
  if (auto v = strings("cookie_secrets")) c.cookie_secrets = *v;
  if (auto v = integer("max_body_bytes")) c.max_body_bytes = *v;
  for (auto [key, field] : {std::pair{"mongrel2_chroot", &c.mongrel2_chroot},
                            std::pair{"upload_store", &c.upload_store}}) {
    if (auto node = t[key]) {
      auto v = node.value<std::string>();
      if (!v) throw ConfigError(std::string("config file: ") + key + " must be a string");
      *field = *v;
    }
  }
  if (auto v = integer("shards")) c.shards = *v;
  if (auto v = integer("stack_size")) c.stack_size = *v;
  if (auto v = integer("grace_ms")) c.grace = std::chrono::milliseconds(*v);
  if (auto v = integer("idle_poll_us")) c.idle_poll = std::chrono::microseconds(*v);
  if (auto v = integer("pub_hwm")) c.pub_hwm = *v;
  if (auto v = integer("max_in_flight")) c.max_in_flight = *v;
  if (auto v = integer("max_header_bytes")) c.max_header_bytes = *v;
  if (auto v = integer("request_timeout_ms")) c.request_timeout = std::chrono::milliseconds(*v);
  if (auto v = integer("offload_threads")) c.offload_threads = *v;
  if (auto v = integer("offload_queue")) c.offload_queue = *v;
  if (auto node = t["stack_guard"]) {
    auto b = node.value<bool>();
    if (!b) throw ConfigError("config file: stack_guard must be true or false");
    c.stack_guard = *b;
  }
  if (auto node = t["pin_threads"]) {
    auto b = node.value<bool>();
    if (!b) throw ConfigError("config file: pin_threads must be true or false");
    c.pin_threads = *b;
  }
  if (auto node = t["log_level"]) {
    auto s = node.value<std::string>();
    if (!s) throw ConfigError("config file: log_level must be a string");
    c.log_level = *s;
  }
}

void apply_env(Config& c, const std::function<const char*(const char*)>& getenv) {
  auto get = [&](const char* name) -> std::optional<std::string> {
    const char* v = getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
  if (auto v = get("BRUBECK_SEND_SPECS")) c.send_specs = split_specs(*v);
  if (auto v = get("BRUBECK_RECV_SPECS")) c.recv_specs = split_specs(*v);
  if (auto v = get("BRUBECK_SHARDS")) c.shards = parse_size("BRUBECK_SHARDS", *v);
  if (auto v = get("BRUBECK_STACK_SIZE")) c.stack_size = parse_size("BRUBECK_STACK_SIZE", *v);
  if (auto v = get("BRUBECK_STACK_GUARD")) {
    if (*v != "0" && *v != "1") throw ConfigError("BRUBECK_STACK_GUARD: 0 or 1");
    c.stack_guard = *v == "1";
  }
  if (auto v = get("BRUBECK_GRACE_MS"))
    c.grace = std::chrono::milliseconds(parse_size("BRUBECK_GRACE_MS", *v));
  if (auto v = get("BRUBECK_IDLE_POLL_US"))
    c.idle_poll = std::chrono::microseconds(parse_size("BRUBECK_IDLE_POLL_US", *v));
  if (auto v = get("BRUBECK_LOG_LEVEL")) c.log_level = *v;
  if (auto v = get("BRUBECK_COOKIE_SECRETS")) c.cookie_secrets = split_specs(*v);
  if (auto v = get("BRUBECK_MAX_BODY_BYTES"))
    c.max_body_bytes = parse_size("BRUBECK_MAX_BODY_BYTES", *v);
  if (auto v = get("BRUBECK_MONGREL2_CHROOT")) c.mongrel2_chroot = *v;
  if (auto v = get("BRUBECK_UPLOAD_STORE")) c.upload_store = *v;
  if (auto v = get("BRUBECK_MAX_IN_FLIGHT"))
    c.max_in_flight = parse_size("BRUBECK_MAX_IN_FLIGHT", *v);
  if (auto v = get("BRUBECK_MAX_HEADER_BYTES"))
    c.max_header_bytes = parse_size("BRUBECK_MAX_HEADER_BYTES", *v);
  if (auto v = get("BRUBECK_REQUEST_TIMEOUT_MS"))
    c.request_timeout = std::chrono::milliseconds(parse_size("BRUBECK_REQUEST_TIMEOUT_MS", *v));
  if (auto v = get("BRUBECK_OFFLOAD_THREADS"))
    c.offload_threads = parse_size("BRUBECK_OFFLOAD_THREADS", *v);
  if (auto v = get("BRUBECK_OFFLOAD_QUEUE"))
    c.offload_queue = parse_size("BRUBECK_OFFLOAD_QUEUE", *v);
}

}  // namespace

void validate(const Config& c) {
  if (c.send_specs.empty()) throw ConfigError("send_specs: at least one endpoint is needed");
  if (c.recv_specs.empty()) throw ConfigError("recv_specs: at least one endpoint is needed");
  for (const auto& s : c.send_specs)
    if (!valid_endpoint(s)) throw ConfigError("send_specs: '" + s + "' is not a ZeroMQ endpoint");
  for (const auto& s : c.recv_specs)
    if (!valid_endpoint(s)) throw ConfigError("recv_specs: '" + s + "' is not a ZeroMQ endpoint");
  if (c.shards > 1024) throw ConfigError("shards: at most 1024");
  if (c.stack_size < 16 * 1024 || c.stack_size > 64 * 1024 * 1024)
    throw ConfigError("stack_size: between 16 KiB and 64 MiB");
  if (c.grace > std::chrono::hours(1)) throw ConfigError("grace_ms: at most one hour");
  if (c.idle_poll > std::chrono::seconds(1)) throw ConfigError("idle_poll_us: at most 1 s");
  if (c.pub_hwm == 0) throw ConfigError("pub_hwm: must be positive");
  for (const auto& secret : c.cookie_secrets)
    if (secret.size() < 16)
      throw ConfigError("cookie_secrets: each secret needs at least 16 bytes");
  if (c.max_body_bytes == 0) throw ConfigError("max_body_bytes: must be positive");
  if (c.request_timeout > std::chrono::hours(24))
    throw ConfigError("request_timeout_ms: at most 24 hours (0: no limit)");
  if (c.offload_threads > 4096) throw ConfigError("offload_threads: at most 4096");
  if (c.offload_queue == 0) throw ConfigError("offload_queue: must be positive");
  if (c.max_in_flight == 0) throw ConfigError("max_in_flight: must be positive");
  if (c.max_header_bytes < 1024) throw ConfigError("max_header_bytes: at least 1024");
  static const char* const levels[] = {"trace", "debug",    "info", "warn",
                                       "error", "critical", "off"};
  bool ok = false;
  for (auto* l : levels) ok |= c.log_level == l;
  if (!ok) throw ConfigError("log_level: '" + c.log_level + "' is not one of trace..off");
}

Config parse_config(const std::vector<std::string>& args,
                    const std::function<const char*(const char*)>& getenv_fn) {
  auto getenv = getenv_fn ? getenv_fn : [](const char* n) -> const char* { return std::getenv(n); };
  CLI::App cli{"A brubeck handler process behind Mongrel2"};
  std::string file;
  std::vector<std::string> send_specs, recv_specs;
  std::size_t shards = 0, stack_size = 0, grace_ms = 0, idle_poll_us = 0;
  std::string log_level;
  bool no_pin = false;
  bool no_stack_guard = false;
  std::vector<std::string> cookie_secrets;
  std::size_t max_body_bytes = 0;
  std::string chroot, upload_store;
  std::size_t request_timeout_ms = 0, offload_threads = 0, offload_queue = 0;
  std::size_t max_in_flight = 0, max_header_bytes = 0;
  cli.add_option("-c,--config", file, "TOML configuration file (also BRUBECK_CONFIG)");
  auto* o_send = cli.add_option("--send-spec", send_specs, "Mongrel2 send_spec (repeatable)");
  auto* o_recv = cli.add_option("--recv-spec", recv_specs, "Mongrel2 recv_spec (repeatable)");
  auto* o_shards = cli.add_option("-s,--shards", shards, "shard threads (0: one per core)");
  auto* o_stack = cli.add_option("--stack-size", stack_size, "fiber stack bytes");
  auto* o_grace = cli.add_option("--grace-ms", grace_ms, "shutdown grace period");
  auto* o_poll = cli.add_option("--idle-poll-us", idle_poll_us, "busy-poll before sleeping");
  auto* o_log = cli.add_option("--log-level", log_level, "trace|debug|info|warn|error|off");
  cli.add_flag("--no-pin", no_pin, "do not pin shard threads to cores");
  cli.add_flag("--no-stack-guard", no_stack_guard,
               "no guard page under fiber stacks (more fibers than vm.max_map_count / 2)");
  auto* o_secret = cli.add_option("--cookie-secret", cookie_secrets,
                                  "secure-cookie secret (repeat to rotate; first signs)");
  auto* o_body = cli.add_option("--max-body-bytes", max_body_bytes, "largest request body");
  auto* o_chroot = cli.add_option("--mongrel2-chroot", chroot, "Mongrel2's chroot folder");
  auto* o_store = cli.add_option("--upload-store", upload_store,
                                 "folder Mongrel2 spools uploads to (default <chroot>/tmp)");
  auto* o_timeout = cli.add_option("--request-timeout-ms", request_timeout_ms,
                                   "answer 504 to requests running longer (0: no limit)");
  auto* o_threads = cli.add_option("--offload-threads", offload_threads,
                                   "offload() worker threads (0: four per core)");
  auto* o_queue = cli.add_option("--offload-queue", offload_queue, "offload() jobs queued");
  auto* o_inflight = cli.add_option("--max-in-flight", max_in_flight,
                                    "requests per shard at once; more get 503 + Retry-After");
  auto* o_header = cli.add_option("--max-header-bytes", max_header_bytes,
                                  "largest request headers (431 beyond)");

  std::vector<std::string> rev(args.rbegin(), args.rend() - (args.empty() ? 0 : 1));
  try {
    cli.parse(rev);
  } catch (const CLI::CallForHelp&) {
    throw ConfigHelp{cli.help()};
  } catch (const CLI::ParseError& e) {
    throw ConfigError(e.what());
  }

  Config c;
  if (file.empty())
    if (const char* f = getenv("BRUBECK_CONFIG"); f && *f) file = f;
  if (!file.empty()) apply_file(c, file);
  apply_env(c, getenv);
  if (o_send->count()) c.send_specs = send_specs;
  if (o_recv->count()) c.recv_specs = recv_specs;
  if (o_shards->count()) c.shards = shards;
  if (o_stack->count()) c.stack_size = stack_size;
  if (o_grace->count()) c.grace = std::chrono::milliseconds(grace_ms);
  if (o_poll->count()) c.idle_poll = std::chrono::microseconds(idle_poll_us);
  if (o_log->count()) c.log_level = log_level;
  if (no_pin) c.pin_threads = false;
  if (no_stack_guard) c.stack_guard = false;
  if (o_secret->count()) c.cookie_secrets = cookie_secrets;
  if (o_body->count()) c.max_body_bytes = max_body_bytes;
  if (o_chroot->count()) c.mongrel2_chroot = chroot;
  if (o_store->count()) c.upload_store = upload_store;
  if (o_timeout->count()) c.request_timeout = std::chrono::milliseconds(request_timeout_ms);
  if (o_threads->count()) c.offload_threads = offload_threads;
  if (o_queue->count()) c.offload_queue = offload_queue;
  if (o_inflight->count()) c.max_in_flight = max_in_flight;
  if (o_header->count()) c.max_header_bytes = max_header_bytes;
  validate(c);
  return c;
}

Config load_config(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  try {
    return parse_config(args);
  } catch (const ConfigHelp& h) {
    std::cout << h.text;
    std::exit(0);
  } catch (const ConfigError& e) {
    std::cerr << (argc > 0 ? argv[0] : "brubeck") << ": configuration error: " << e.what() << "\n";
    std::exit(2);
  }
}

}  // namespace brubeck

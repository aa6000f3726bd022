// The typed configuration of a brubeck process, read from (lowest to highest
// precedence) built-in defaults, a TOML file, BRUBECK_* environment variables
// and the command line, then validated as a whole, so a bad value stops the
// process at start with a message naming it.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace brubeck {

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
  std::chrono::milliseconds grace{5000};     // in-flight requests get this long at shutdown
  std::chrono::microseconds idle_poll{0};    // shard busy-poll before sleeping
  std::size_t pub_hwm = 100000;              // replies queued per shard before drops
  std::size_t max_in_flight = 10000;         // per shard; more are answered 503 + Retry-After
  std::size_t max_header_bytes = 64 * 1024;  // larger request headers: 431
  bool pin_threads = true;                   // pin shard k to core k % cores
  std::string log_level = "info";
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
  // offload(): worker threads (0: four per core) and jobs queued before 503.
  std::size_t offload_threads = 0;
  std::size_t offload_queue = 1024;

  // upload_store, or <mongrel2_chroot>/tmp when only the chroot is set.
  std::string upload_store_path() const;

  // shards, or the number of cores when shards is 0.
  std::size_t shard_count() const noexcept;
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws ConfigError describing the first invalid value.
void validate(const Config& config);

// Reads the file (if --config or BRUBECK_CONFIG names one), the environment
// (through `getenv`) and `args` (args[0] is the program name). Throws
// ConfigError; "--help" throws ConfigHelp carrying the help text.
struct ConfigHelp {
  std::string text;
};
Config parse_config(const std::vector<std::string>& args,
                    const std::function<const char*(const char*)>& getenv = nullptr);

// For main(): parse_config on the real argv and environment; prints help
// (exit 0) or the error (exit 2) itself.
Config load_config(int argc, char** argv);

}  // namespace brubeck

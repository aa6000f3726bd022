// Test support: child processes, temporary folders and loopback ports, for
// tests that start real servers (Mongrel2, Redis, PostgreSQL, the demo app).
//
// Every process started here is its own child: it is stopped by its pid
// (never by name), reaped, and killed by the kernel if the test process dies
// (PR_SET_PDEATHSIG). BRUBECK_KEEP_TMP=1 keeps the temporary folders.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace brubeck::testing {

using namespace std::chrono_literals;
using Headers = std::vector<std::pair<std::string, std::string>>;

// Milliseconds left until deadline, never negative.
int remaining_ms(std::chrono::steady_clock::time_point deadline);
// Nonblocking connect to 127.0.0.1:port bounded by timeout; returns the fd
// (nonblocking) or -1 with errno set.
int connect_loopback(int port, std::chrono::milliseconds timeout);
[[noreturn]] void throw_errno(const std::string& what);
// The last max_chars of text, marked "[...]" when cut.
std::string tail(const std::string& text, std::size_t max_chars);

// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read back).
int free_tcp_port();
// n distinct free ports (all held bound at once while choosing).
std::vector<int> free_tcp_ports(int n);

// Whether something accepts TCP connections on 127.0.0.1:port right now.
bool port_accepts(int port, std::chrono::milliseconds timeout = 200ms);

// BRUBECK_SOURCE_DIR, else the source tree this file was compiled from.
std::string source_dir();
// BRUBECK_BINARY_DIR; throws when unset.
std::string binary_dir();
// binary_dir()/relative, checked to be an executable file (throws otherwise).
std::string binary_path(std::string_view relative);

// A fresh folder from mkdtemp under /tmp, removed (recursively) on
// destruction unless BRUBECK_KEEP_TMP=1.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "brubeck-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Reads a whole file ("" when it cannot be read).
std::string read_file(const std::string& path);

struct ChildOptions {
  std::string cwd;               // empty: inherit
  Headers env;                   // extra environment variables (name, value)
  std::string log_path;          // empty: output.log in the child's own temp dir
  bool kill_with_parent = true;  // PR_SET_PDEATHSIG(SIGKILL)
};

// One child process: fork + exec, stdout and stderr to a log file. Only its
// own pid is ever signalled. The destructor stops it (SIGTERM, then SIGKILL).
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // path: absolute, relative, or a bare name looked up in PATH. args exclude
  // argv[0]. Throws if the program cannot be started (the exec failure is
  // reported back through a close-on-exec pipe).
  void start(const std::string& path, const std::vector<std::string>& args,
             ChildOptions options = {});

  // Sends `signal` to the pid, waits up to `timeout` for it to exit, then
  // SIGKILLs it. Returns its status: the exit code, or 128 + the signal
  // number when a signal ended it; -1 when it was never started.
  int stop(int signal = SIGTERM, std::chrono::milliseconds timeout = 10s);

  // Waits up to `timeout` for it to exit on its own; nullopt if it did not.
  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout);

  // Still running (reaps it and records the status if it has exited).
  bool running();
  pid_t pid() const { return pid_; }
  // Status after it exited (see stop()), nullopt while running/unstarted.
  std::optional<int> exit_status() const { return status_; }
  // Everything it wrote to stdout and stderr so far.
  std::string output() const;
  const std::string& log_path() const { return log_path_; }
  // "name (pid N)" for messages.
  std::string describe() const;

 private:
  bool reap(bool block);

  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string name_;
  std::string log_path_;
  std::optional<TempDir> log_dir_;
};

// Runs a program to completion (bounded); returns {status, output}. Throws on
// timeout (after killing it).
std::pair<int, std::string> run_process(const std::string& path,
                                        const std::vector<std::string>& args,
                                        std::chrono::milliseconds timeout = 30s,
                                        ChildOptions options = {});

}  // namespace brubeck::testing

// Integration-test harness: a real Mongrel2, real handler processes, and a
// small HTTP/1.x client, all on loopback.
//
// Mongrel2's configuration comes from deploy/mongrel2.sh (m2_prepare), the
// same text deploy/run and bench/e2e.sh use. Every process the harness
// starts is its own child: it is stopped by its pid (never by name), reaped,
// and killed by the kernel if the test process dies (PR_SET_PDEATHSIG).
//
// Environment (set by ctest): BRUBECK_BINARY_DIR (the build tree, where
// bench/m2_c_handler and examples/brubeck_demo live) and BRUBECK_SOURCE_DIR.
// BRUBECK_KEEP_TMP=1 keeps the temporary folders for a post-mortem.
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

struct Mongrel2Options {
  std::string protocol = "json";  // or "tnetstring"
  std::chrono::milliseconds start_timeout = 10s;
  std::chrono::milliseconds stop_timeout = 10s;
};

// A real Mongrel2 1.12.2 on 127.0.0.1, three fresh ports, its own temp
// folder (its chroot when root). Requests to any path and Host reach the one
// handler at send_spec()/recv_spec().
class Mongrel2Server {
 public:
  explicit Mongrel2Server(Mongrel2Options options = {});
  ~Mongrel2Server();
  Mongrel2Server(const Mongrel2Server&) = delete;
  Mongrel2Server& operator=(const Mongrel2Server&) = delete;

  // Ports, config (deploy/mongrel2.sh m2_prepare), fork/exec of
  // `mongrel2 config.sqlite UUID` from its folder, bounded wait until the
  // HTTP port accepts. Throws on failure (with Mongrel2's output).
  void start();
  // SIGINT to exactly its pid, bounded wait, SIGKILL. Idempotent.
  void stop();
  bool running();

  int http_port() const { return http_port_; }
  int send_port() const { return send_port_; }
  int recv_port() const { return recv_port_; }
  std::string send_spec() const;
  std::string recv_spec() const;
  const std::string& protocol() const { return options_.protocol; }
  pid_t pid() const { return process_.pid(); }
  // Its folder (chroot): mongrel2.conf, logs/, tmp/ (uploads).
  const std::string& dir() const;
  // Its stdout/stderr plus logs/error.log, for failure messages.
  std::string log_text() const;

 private:
  Mongrel2Options options_;
  std::optional<TempDir> dir_;
  ChildProcess process_;
  int http_port_ = 0;
  int send_port_ = 0;
  int recv_port_ = 0;
};

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::string version;  // "HTTP/1.1"
  Headers headers;      // in order, names as sent
  std::string body;     // de-chunked when Transfer-Encoding: chunked

  // The first header with this name (case-insensitive), "" when absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

// One client connection to 127.0.0.1:port, reusable for several requests
// (keep-alive). All waits are bounded; a timeout throws std::runtime_error.
class HttpConnection {
 public:
  explicit HttpConnection(int port, std::chrono::milliseconds connect_timeout = 5s,
                          std::chrono::milliseconds receive_timeout = 10s);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  HttpConnection(HttpConnection&& other) noexcept;
  HttpConnection& operator=(HttpConnection&& other) noexcept;

  // Sends "METHOD PATH HTTP/1.1" (1.0 if http10) with Host: 127.0.0.1:port
  // (unless extra_headers has a Host), extra_headers, and Content-Length when
  // there is a body (unless given), then reads exactly one response.
  HttpResponse request(std::string_view method, std::string_view path,
                       const Headers& extra_headers = {}, std::string_view body = "",
                       bool http10 = false);

  // Lower level: write raw bytes; read one response (HEAD: no body).
  void send_raw(std::string_view bytes);
  HttpResponse read_response(bool head_request = false);

  // True when the server has closed (or reset) the connection: checks with a
  // poll of at most `wait`. Bytes that arrive meanwhile are kept for the next
  // read_response().
  bool closed_by_peer(std::chrono::milliseconds wait = 200ms);

  void set_receive_timeout(std::chrono::milliseconds timeout) { receive_timeout_ = timeout; }
  int port() const { return port_; }
  int fd() const { return fd_; }
  void close();

 private:
  // Appends to buf_; returns false on EOF. Throws on timeout or error.
  bool fill(std::chrono::steady_clock::time_point deadline);
  // Reads until buf_ holds n bytes (after offset 0).
  void need(std::size_t n, std::chrono::steady_clock::time_point deadline);
  std::string read_line(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  int port_ = 0;
  bool eof_ = false;
  std::chrono::milliseconds receive_timeout_;
  std::string buf_;  // received, not yet consumed
};

// GET on a fresh connection.
HttpResponse http_get(int port, std::string_view path, std::chrono::milliseconds timeout = 10s);

// Readiness of a handler behind Mongrel2: repeats GET `path` on fresh
// connections (each attempt bounded by `attempt_timeout`: Mongrel2 queues
// requests while no handler is connected, and a reply published before the
// handler's PUB socket is connected is lost) until one answers
// `expected_status`, for at most `timeout`. Fails fast, with its output, if
// `handler` (when given) exits. Returns that response; throws on timeout.
HttpResponse wait_for_handler(int port, std::string_view path = "/",
                              ChildProcess* handler = nullptr,
                              std::chrono::milliseconds timeout = 15s, int expected_status = 200,
                              std::chrono::milliseconds attempt_timeout = 1s);

// Whether a pid exists and is not a zombie (for "the process is gone" checks).
bool pid_alive(pid_t pid);

}  // namespace brubeck::testing

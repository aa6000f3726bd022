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

#include "support/process.hpp"

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace brubeck::testing {

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

  // Bytes received and not yet read as part of a response (e.g. a body
  // sent after the head of a HEAD reply).
  std::size_t buffered() const noexcept { return buf_.size(); }

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

// What a DemoServer starts: the demo's arguments after those that connect it
// to Mongrel2 (--send-spec, --recv-spec), its extra environment, and the
// protocol Mongrel2 speaks to it.
struct DemoOptions {
  std::vector<std::string> args{};
  Headers env{};
  std::string protocol = "json";  // or "tnetstring"
  // Also passes --mongrel2-chroot with Mongrel2's folder (where it spools
  // uploads), for the upload routes.
  bool mongrel2_chroot = false;
};

// A real Mongrel2 with the demo app (examples/brubeck_demo) behind it, ready
// to serve: the constructor starts both and waits until the demo answers
// GET / (throws with the demo's output if it does not); the destructor stops
// the demo, then Mongrel2, each by its pid.
class DemoServer {
 public:
  explicit DemoServer(DemoOptions options = {});
  ~DemoServer();
  DemoServer(const DemoServer&) = delete;
  DemoServer& operator=(const DemoServer&) = delete;

  int port() const { return m2_.http_port(); }
  // "http://127.0.0.1:PORT", what a browser opens.
  std::string base_url() const;
  Mongrel2Server& mongrel2() { return m2_; }
  ChildProcess& demo() { return demo_; }

  // For a fixture's TearDown: a demo still running must exit 0 on SIGTERM
  // (a test failure otherwise); when the test has failed, the demo's output
  // goes to stderr.
  void expect_clean_stop();

 private:
  Mongrel2Server m2_;
  ChildProcess demo_;
};

// Runs `node tests/browser/<script>.mjs BASE_URL SCREENSHOT_DIR` against the
// server (bounded; headless chromium, see tests/browser/browser.mjs) with
// the screenshots in the build tree's browser-screenshots/. A test failure,
// with the script's output, unless it exits 0; its output (the steps and the
// screenshots' paths) goes to stdout either way, so it stays with the test's.
void expect_browser_script_passes(const DemoServer& server, std::string_view script);

// Options for starting the demo app with these extra environment variables,
// and its templates (examples/templates/), as deploy/run gives them.
inline ChildOptions demo_options(Headers env) {
  ChildOptions options;
  options.env = std::move(env);
  options.env.emplace_back("BRUBECK_TEMPLATES", source_dir() + "/examples/templates");
  return options;
}

// How many times `needle` occurs in `text` (log lines in a process's output).
inline std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// Whether a pid exists and is not a zombie (for "the process is gone" checks).
bool pid_alive(pid_t pid);

}  // namespace brubeck::testing

#include "harness.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace brubeck::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string trim(std::string_view s) {
  auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  auto last = s.find_last_not_of(" \t\r");
  return std::string(s.substr(first, last - first + 1));
}

}  // namespace

Mongrel2Server::Mongrel2Server(Mongrel2Options options) : options_(std::move(options)) {}

Mongrel2Server::~Mongrel2Server() {
  try {
    stop();
  } catch (...) {
  }
}

std::string Mongrel2Server::send_spec() const {
  return "tcp://127.0.0.1:" + std::to_string(send_port_);
}

std::string Mongrel2Server::recv_spec() const {
  return "tcp://127.0.0.1:" + std::to_string(recv_port_);
}

const std::string& Mongrel2Server::dir() const {
  static const std::string none;
  return dir_ ? dir_->path() : none;
}

std::string Mongrel2Server::log_text() const {
  if (!dir_) return "(mongrel2 not prepared)";
  return "--- mongrel2 output:\n" + tail(read_file(dir_->path() + "/mongrel2.out"), 4000) +
         "\n--- logs/error.log:\n" + tail(read_file(dir_->path() + "/logs/error.log"), 4000);
}

bool Mongrel2Server::running() { return process_.running(); }

void Mongrel2Server::start() {
  if (process_.running()) return;

  // First start: ports and configuration. A restart keeps both, so handlers
  // connected to send_spec()/recv_spec() reconnect to the new process.
  if (!dir_) {
    auto ports = free_tcp_ports(3);
    TempDir dir("brubeck-m2");
    std::string script = source_dir() + "/deploy/mongrel2.sh";
    if (::access(script.c_str(), R_OK) != 0) throw std::runtime_error("no " + script);
    auto [status, output] =
        run_process("bash",
                    {"-c", R"(source "$1" && m2_prepare "$2" "$3" "$4" "$5" "$6")", "m2_prepare",
                     script, dir.path(), std::to_string(ports[0]), std::to_string(ports[1]),
                     std::to_string(ports[2]), options_.protocol},
                    60s);
    if (status != 0) {
      throw std::runtime_error("m2_prepare failed (status " + std::to_string(status) + "):\n" +
                               output);
    }
    http_port_ = ports[0];
    send_port_ = ports[1];
    recv_port_ = ports[2];
    dir_.emplace(std::move(dir));
  }

  std::string uuid;
  {
    std::istringstream info(read_file(dir_->path() + "/m2.info"));
    for (std::string line; std::getline(info, line);) {
      if (line.rfind("uuid=", 0) == 0) uuid = line.substr(5);
    }
  }
  if (uuid.empty()) throw std::runtime_error("no uuid in " + dir_->path() + "/m2.info");

  // A pid file left by a killed predecessor makes mongrel2 refuse to start
  // when that pid is in use again.
  std::error_code ec;
  fs::remove(dir_->path() + "/run/mongrel2.pid", ec);

  ChildOptions child_options;
  child_options.cwd = dir_->path();  // chroot='./'
  child_options.log_path = dir_->path() + "/mongrel2.out";
  child_options.env.emplace_back("LOGNAME", "brubeck");
  process_.start("mongrel2", {"config.sqlite", uuid}, child_options);

  auto deadline = Clock::now() + options_.start_timeout;
  for (;;) {
    if (!process_.running()) {
      throw std::runtime_error(
          "mongrel2 exited (status " + std::to_string(process_.exit_status().value_or(-1)) +
          ") before accepting on port " + std::to_string(http_port_) + "\n" + log_text());
    }
    if (port_accepts(http_port_, 100ms)) break;
    if (Clock::now() >= deadline) {
      process_.stop(SIGKILL, 2s);
      throw std::runtime_error("mongrel2 did not accept on port " + std::to_string(http_port_) +
                               " within " + std::to_string(options_.start_timeout.count()) +
                               " ms\n" + log_text());
    }
    std::this_thread::sleep_for(20ms);
  }
}

void Mongrel2Server::stop() {
  if (process_.pid() > 0) process_.stop(SIGINT, options_.stop_timeout);
}

// ---------------------------------------------------------------- HTTP

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

bool HttpResponse::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& kv) { return iequals(kv.first, name); });
}

HttpConnection::HttpConnection(int port, std::chrono::milliseconds connect_timeout,
                               std::chrono::milliseconds receive_timeout)
    : port_(port), receive_timeout_(receive_timeout) {
  fd_ = connect_loopback(port, connect_timeout);
  if (fd_ < 0) throw_errno("connect 127.0.0.1:" + std::to_string(port));
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

HttpConnection::~HttpConnection() { close(); }

HttpConnection::HttpConnection(HttpConnection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      port_(other.port_),
      eof_(other.eof_),
      receive_timeout_(other.receive_timeout_),
      buf_(std::move(other.buf_)) {}

HttpConnection& HttpConnection::operator=(HttpConnection&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    port_ = other.port_;
    eof_ = other.eof_;
    receive_timeout_ = other.receive_timeout_;
    buf_ = std::move(other.buf_);
  }
  return *this;
}

void HttpConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void HttpConnection::send_raw(std::string_view bytes) {
  if (fd_ < 0) throw std::runtime_error("HttpConnection: not connected");
  auto deadline = Clock::now() + receive_timeout_;
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw_errno("send");
    pollfd p{fd_, POLLOUT, 0};
    int left = remaining_ms(deadline);
    if (left == 0 || ::poll(&p, 1, left) == 0) {
      throw std::runtime_error("HttpConnection: send timed out");
    }
  }
}

bool HttpConnection::fill(Clock::time_point deadline) {
  if (eof_) return false;
  if (fd_ < 0) throw std::runtime_error("HttpConnection: not connected");
  char chunk[65536];
  for (;;) {
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) {
      eof_ = true;
      return false;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw_errno("recv");
    pollfd p{fd_, POLLIN, 0};
    int left = remaining_ms(deadline);
    int rc = left == 0 ? 0 : ::poll(&p, 1, left);
    if (rc < 0 && errno != EINTR) throw_errno("poll");
    if (rc == 0) {
      throw std::runtime_error("HttpConnection: no complete response from port " +
                               std::to_string(port_) + " within " +
                               std::to_string(receive_timeout_.count()) + " ms (have " +
                               std::to_string(buf_.size()) + " bytes)");
    }
  }
}

void HttpConnection::need(std::size_t n, Clock::time_point deadline) {
  while (buf_.size() < n) {
    if (!fill(deadline)) {
      throw std::runtime_error("HttpConnection: connection closed inside a response body");
    }
  }
}

std::string HttpConnection::read_line(Clock::time_point deadline) {
  std::size_t pos;
  while ((pos = buf_.find("\r\n")) == std::string::npos) {
    if (!fill(deadline)) throw std::runtime_error("HttpConnection: connection closed mid-line");
  }
  std::string line = buf_.substr(0, pos);
  buf_.erase(0, pos + 2);
  return line;
}

HttpResponse HttpConnection::read_response(bool head_request) {
  auto deadline = Clock::now() + receive_timeout_;
  std::size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(deadline)) {
      throw std::runtime_error(
          buf_.empty() ? "HttpConnection: connection closed before a response"
                       : "HttpConnection: connection closed inside a response head: " + buf_);
    }
  }
  std::string head = buf_.substr(0, end);
  buf_.erase(0, end + 4);

  HttpResponse r;
  std::istringstream lines(head);
  std::string line;
  std::getline(lines, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  {
    // "HTTP/1.1 200 OK"
    auto sp1 = line.find(' ');
    if (sp1 == std::string::npos || line.rfind("HTTP/", 0) != 0) {
      throw std::runtime_error("HttpConnection: bad status line: " + line);
    }
    r.version = line.substr(0, sp1);
    auto sp2 = line.find(' ', sp1 + 1);
    r.status = std::atoi(line.substr(sp1 + 1, sp2 - sp1 - 1).c_str());
    r.reason = sp2 == std::string::npos ? "" : line.substr(sp2 + 1);
  }
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    r.headers.emplace_back(line.substr(0, colon), trim(std::string_view(line).substr(colon + 1)));
  }

  if (head_request || r.status / 100 == 1 || r.status == 204 || r.status == 304) return r;

  std::string te = r.header("Transfer-Encoding");
  std::transform(te.begin(), te.end(), te.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (te.find("chunked") != std::string::npos) {
    for (;;) {
      std::string size_line = read_line(deadline);
      std::size_t size = std::stoul(size_line, nullptr, 16);
      if (size == 0) {
        while (!read_line(deadline).empty()) {
        }
        break;
      }
      need(size + 2, deadline);
      r.body.append(buf_, 0, size);
      buf_.erase(0, size + 2);
    }
  } else if (r.has_header("Content-Length")) {
    std::size_t size = std::stoul(r.header("Content-Length"));
    need(size, deadline);
    r.body = buf_.substr(0, size);
    buf_.erase(0, size);
  } else {
    while (fill(deadline)) {
    }
    r.body = std::move(buf_);
    buf_.clear();
  }
  return r;
}

HttpResponse HttpConnection::request(std::string_view method, std::string_view path,
                                     const Headers& extra_headers, std::string_view body,
                                     bool http10) {
  if (eof_) throw std::runtime_error("HttpConnection: the server closed this connection");
  auto given = [&](std::string_view name) {
    return std::any_of(extra_headers.begin(), extra_headers.end(),
                       [&](const auto& kv) { return iequals(kv.first, name); });
  };
  std::string req;
  req.reserve(256 + body.size());
  req.append(method).append(" ").append(path).append(http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  if (!given("Host")) req.append("Host: 127.0.0.1:").append(std::to_string(port_)).append("\r\n");
  for (const auto& [name, value] : extra_headers) {
    req.append(name).append(": ").append(value).append("\r\n");
  }
  bool wants_length = !body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
  if (wants_length && !given("Content-Length") && !given("Transfer-Encoding")) {
    req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  req.append("\r\n").append(body);
  send_raw(req);
  return read_response(method == "HEAD");
}

bool HttpConnection::closed_by_peer(std::chrono::milliseconds wait) {
  if (eof_ || fd_ < 0) return true;
  pollfd p{fd_, static_cast<short>(POLLIN | POLLRDHUP), 0};
  int rc;
  do {
    rc = ::poll(&p, 1, static_cast<int>(wait.count()));
  } while (rc < 0 && errno == EINTR);
  if (rc <= 0) return false;
  char chunk[65536];
  for (;;) {
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
      eof_ = true;
      return true;
    }
    if (errno == EINTR) continue;
    return false;  // data arrived, the connection is still open
  }
}

HttpResponse http_get(int port, std::string_view path, std::chrono::milliseconds timeout) {
  HttpConnection c(port, timeout, timeout);
  return c.request("GET", path);
}

HttpResponse wait_for_handler(int port, std::string_view path, ChildProcess* handler,
                              std::chrono::milliseconds timeout, int expected_status,
                              std::chrono::milliseconds attempt_timeout) {
  auto deadline = Clock::now() + timeout;
  std::string last = "no attempt";
  for (;;) {
    if (handler != nullptr && !handler->running()) {
      throw std::runtime_error(handler->describe() + " exited (status " +
                               std::to_string(handler->exit_status().value_or(-1)) +
                               ") before answering; its output:\n" + tail(handler->output(), 4000));
    }
    try {
      HttpConnection c(port, attempt_timeout, attempt_timeout);
      HttpResponse r = c.request("GET", path);
      if (r.status == expected_status) return r;
      last = "status " + std::to_string(r.status) + " " + r.reason;
    } catch (const std::exception& e) {
      last = e.what();
    }
    if (Clock::now() >= deadline) {
      throw std::runtime_error("no handler answered GET " + std::string(path) + " on port " +
                               std::to_string(port) + " with " + std::to_string(expected_status) +
                               " within " + std::to_string(timeout.count()) + " ms; last: " + last);
    }
    std::this_thread::sleep_for(50ms);
  }
}

// ---------------------------------------------------------------- demo

DemoServer::DemoServer(DemoOptions options) : m2_(Mongrel2Options{.protocol = options.protocol}) {
  m2_.start();
  std::vector<std::string> args = {"--send-spec", m2_.send_spec(), "--recv-spec", m2_.recv_spec()};
  if (options.mongrel2_chroot) {
    args.insert(args.end(), {"--mongrel2-chroot", m2_.dir()});
  }
  args.insert(args.end(), options.args.begin(), options.args.end());
  demo_.start(binary_path("examples/brubeck_demo"), args, demo_options(std::move(options.env)));
  wait_for_handler(m2_.http_port(), "/", &demo_);
}

DemoServer::~DemoServer() {
  if (demo_.pid() > 0) demo_.stop(SIGTERM);
  try {
    m2_.stop();
  } catch (...) {
  }
}

std::string DemoServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(m2_.http_port());
}

void DemoServer::expect_clean_stop() {
  if (demo_.running()) {
    EXPECT_EQ(demo_.stop(SIGTERM), 0) << "the demo's exit status on SIGTERM";
  }
  if (::testing::Test::HasFailure()) std::cerr << "--- demo output:\n" << demo_.output() << "\n";
}

void expect_browser_script_passes(const DemoServer& server, std::string_view script) {
  const std::string dir = source_dir() + "/tests/browser";
  const std::string path = dir + "/" + std::string(script) + ".mjs";
  ASSERT_EQ(::access(path.c_str(), R_OK), 0) << "no browser script " << path;
  // Without it node fails on the import, which says less.
  ASSERT_EQ(::access((dir + "/node_modules/playwright-core").c_str(), R_OK), 0)
      << "playwright-core is not installed in " << dir << ": run deploy/install-deps";
  // The script bounds its own run (browser.mjs: 60 s), and playwright stops
  // the browser when node exits; this bound is for node itself.
  auto [status, output] =
      run_process("node", {path, server.base_url(), binary_dir() + "/browser-screenshots"}, 120s);
  std::cout << output;
  EXPECT_EQ(status, 0) << "browser script " << script << " failed:\n" << output;
}

}  // namespace brubeck::testing

#include "harness.hpp"

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
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace brubeck::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, left.count()));
}

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

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Non-blocking connect to 127.0.0.1:port bounded by timeout; returns the fd
// (non-blocking) or -1 with errno set.
int connect_loopback(int port, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr = loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  if (errno != EINPROGRESS) {
    int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
  int err = 0;
  socklen_t len = sizeof err;
  if (rc <= 0) {
    err = rc == 0 ? ETIMEDOUT : errno;
  } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    err = errno;
  }
  if (err != 0) {
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

bool keep_tmp() {
  const char* v = std::getenv("BRUBECK_KEEP_TMP");
  return v != nullptr && *v != '\0' && std::string_view(v) != "0";
}

std::string tail(const std::string& text, std::size_t max_chars) {
  if (text.size() <= max_chars) return text;
  return "[...]" + text.substr(text.size() - max_chars);
}

int decode_status(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

}  // namespace

// ---------------------------------------------------------------- ports, paths

std::vector<int> free_tcp_ports(int n) {
  std::vector<int> fds;
  std::vector<int> ports;
  auto close_all = [&] {
    for (int fd : fds) ::close(fd);
  };
  for (int i = 0; i < n; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      close_all();
      throw_errno("socket");
    }
    fds.push_back(fd);
    sockaddr_in addr = loopback(0);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      int saved = errno;
      close_all();
      errno = saved;
      throw_errno("bind 127.0.0.1:0");
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  close_all();
  return ports;
}

int free_tcp_port() { return free_tcp_ports(1).front(); }

bool port_accepts(int port, std::chrono::milliseconds timeout) {
  int fd = connect_loopback(port, timeout);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

std::string source_dir() {
  if (const char* v = std::getenv("BRUBECK_SOURCE_DIR"); v != nullptr && *v != '\0') return v;
  // tests/integration/harness.cpp -> the source root.
  return fs::absolute(fs::path(__FILE__)).parent_path().parent_path().parent_path().string();
}

std::string binary_dir() {
  const char* v = std::getenv("BRUBECK_BINARY_DIR");
  if (v == nullptr || *v == '\0') {
    throw std::runtime_error("BRUBECK_BINARY_DIR is not set (ctest sets it to the build tree)");
  }
  return v;
}

std::string binary_path(std::string_view relative) {
  std::string path = (fs::path(binary_dir()) / relative).string();
  if (::access(path.c_str(), X_OK) != 0) {
    throw std::runtime_error("no executable " + path + " (build it first)");
  }
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool pid_alive(pid_t pid) {
  if (pid <= 0) return false;
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return ::kill(pid, 0) == 0;
  auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return true;
  char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

// ---------------------------------------------------------------- TempDir

TempDir::TempDir(std::string_view prefix) {
  std::string templ = "/tmp/" + std::string(prefix) + "-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) throw_errno("mkdtemp " + templ);
  path_ = templ;
}

TempDir::~TempDir() {
  if (path_.empty() || keep_tmp()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    if (!path_.empty() && !keep_tmp()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

// ---------------------------------------------------------------- ChildProcess

ChildProcess::~ChildProcess() {
  try {
    if (pid_ > 0 && !status_) stop(SIGTERM, 5s);
  } catch (...) {
  }
}

void ChildProcess::start(const std::string& path, const std::vector<std::string>& args,
                         ChildOptions options) {
  if (pid_ > 0 && !status_ && running()) {
    throw std::logic_error("ChildProcess::start: " + describe() + " is still running");
  }
  pid_ = -1;
  status_.reset();
  name_ = fs::path(path).filename().string();

  if (options.log_path.empty()) {
    log_dir_.emplace("brubeck-child");
    log_path_ = log_dir_->path() + "/output.log";
  } else {
    log_path_ = options.log_path;
  }
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) throw_errno("open " + log_path_);

  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> argv_store;
  argv_store.push_back(path);
  argv_store.insert(argv_store.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    auto name = entry.substr(0, entry.find('='));
    bool overridden = std::any_of(options.env.begin(), options.env.end(),
                                  [&](const auto& kv) { return kv.first == name; });
    if (!overridden) env_store.emplace_back(entry);
  }
  for (const auto& [name, value] : options.env) env_store.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(log_fd);
    throw_errno("pipe2");
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const bool kill_with_parent = options.kill_with_parent;
  const char* cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();

  pid_t pid = ::fork();
  if (pid < 0) {
    int saved = errno;
    ::close(log_fd);
    ::close(err_pipe[0]);
    ::close(err_pipe[1]);
    if (null_fd >= 0) ::close(null_fd);
    errno = saved;
    throw_errno("fork");
  }
  if (pid == 0) {
    if (kill_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGCHLD, SIGHUP, SIGQUIT}) ::signal(sig, SIG_DFL);
    int err = 0;
    if (null_fd >= 0 && ::dup2(null_fd, STDIN_FILENO) < 0) err = errno;
    if (err == 0 && (::dup2(log_fd, STDOUT_FILENO) < 0 || ::dup2(log_fd, STDERR_FILENO) < 0)) {
      err = errno;
    }
    if (err == 0 && cwd != nullptr && ::chdir(cwd) != 0) err = errno;
    if (err == 0) {
      ::execvpe(argv[0], argv.data(), envp.data());
      err = errno;
    }
    [[maybe_unused]] auto n = ::write(err_pipe[1], &err, sizeof err);
    ::_exit(127);
  }

  ::close(log_fd);
  ::close(err_pipe[1]);
  if (null_fd >= 0) ::close(null_fd);
  pid_ = pid;
  int child_err = 0;
  ssize_t n;
  do {
    n = ::read(err_pipe[0], &child_err, sizeof child_err);
  } while (n < 0 && errno == EINTR);
  ::close(err_pipe[0]);
  if (n > 0) {
    reap(true);
    pid_ = -1;
    throw std::system_error(child_err, std::generic_category(),
                            "cannot start " + path + (cwd ? std::string(" in ") + cwd : ""));
  }
}

bool ChildProcess::reap(bool block) {
  if (pid_ <= 0) return true;
  if (status_) return true;
  int wstatus = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &wstatus, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    status_ = decode_status(wstatus);
    return true;
  }
  if (r < 0) {  // ECHILD: not ours to wait for any more
    status_ = -1;
    return true;
  }
  return false;
}

bool ChildProcess::running() { return pid_ > 0 && !reap(false); }

std::optional<int> ChildProcess::wait_for_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  auto deadline = Clock::now() + timeout;
  while (!reap(false)) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
  return status_;
}

int ChildProcess::stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  if (reap(false)) return *status_;
  ::kill(pid_, signal);
  if (auto st = wait_for_exit(timeout)) return *st;
  ::kill(pid_, SIGKILL);
  reap(true);
  return *status_;
}

std::string ChildProcess::output() const { return read_file(log_path_); }

std::string ChildProcess::describe() const { return name_ + " (pid " + std::to_string(pid_) + ")"; }

std::pair<int, std::string> run_process(const std::string& path,
                                        const std::vector<std::string>& args,
                                        std::chrono::milliseconds timeout, ChildOptions options) {
  ChildProcess child;
  child.start(path, args, std::move(options));
  auto status = child.wait_for_exit(timeout);
  if (!status) {
    child.stop(SIGKILL, 1s);
    throw std::runtime_error(path + " did not finish within " + std::to_string(timeout.count()) +
                             " ms; output:\n" + child.output());
  }
  return {*status, child.output()};
}

// ---------------------------------------------------------------- Mongrel2Server

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

}  // namespace brubeck::testing

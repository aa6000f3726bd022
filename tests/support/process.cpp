#include "support/process.hpp"

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

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

bool keep_tmp() {
  const char* v = std::getenv("BRUBECK_KEEP_TMP");
  return v != nullptr && *v != '\0' && std::string_view(v) != "0";
}

int decode_status(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

}  // namespace

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, left.count()));
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

std::string tail(const std::string& text, std::size_t max_chars) {
  if (text.size() <= max_chars) return text;
  return "[...]" + text.substr(text.size() - max_chars);
}

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

}  // namespace brubeck::testing

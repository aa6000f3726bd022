#include "support/postgres_server.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace brubeck::testing {
namespace {

namespace fs = std::filesystem;

// The server binaries: BRUBECK_PG_BINDIR, else the newest
// /usr/lib/postgresql/<version>/bin (Debian keeps them off PATH).
const std::string& bindir() {
  static const std::string dir = [] {
    if (const char* env = std::getenv("BRUBECK_PG_BINDIR"); env != nullptr && *env != '\0')
      return std::string(env);
    std::string best;
    int best_version = -1;
    std::error_code ec;
    for (fs::directory_iterator it("/usr/lib/postgresql", ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      if (!fs::exists(it->path() / "bin" / "postgres", ec)) continue;
      int version = std::stoi(name);
      if (version > best_version) {
        best_version = version;
        best = (it->path() / "bin").string();
      }
    }
    if (best.empty())
      throw std::runtime_error("PostgreSQL server binaries not found (set BRUBECK_PG_BINDIR)");
    return best;
  }();
  return dir;
}

// As root, everything the server touches belongs to `postgres` and its
// programs run as that user.
struct RunAs {
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

const RunAs& run_as() {
  static const RunAs who = [] {
    RunAs r;
    if (::geteuid() != 0) return r;
    passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr)
      throw std::runtime_error("running as root and there is no `postgres` user to run PostgreSQL");
    r.switch_user = true;
    r.uid = pw->pw_uid;
    r.gid = pw->pw_gid;
    return r;
  }();
  return who;
}

// setpriv execs in place (runuser forks and would stand between us and the
// server's pid, turning our SIGINT into a SIGTERM); `--pdeathsig keep`
// restores the kill-with-parent signal that the change of user clears.
std::pair<std::string, std::vector<std::string>> as_postgres(const std::string& program,
                                                             std::vector<std::string> args) {
  if (!run_as().switch_user) return {program, std::move(args)};
  std::vector<std::string> wrapped = {
      "--reuid=postgres", "--regid=postgres", "--init-groups", "--pdeathsig", "keep", program};
  wrapped.insert(wrapped.end(), args.begin(), args.end());
  return {"setpriv", std::move(wrapped)};
}

void make_owned_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0) throw_errno("mkdir " + path);
  if (run_as().switch_user && ::chown(path.c_str(), run_as().uid, run_as().gid) != 0)
    throw_errno("chown " + path);
}

// A folder the postgres user can traverse (mkdtemp makes it 0700).
void open_up(const TempDir& dir) {
  if (::chmod(dir.path().c_str(), 0755) != 0) throw_errno("chmod " + dir.path());
}

// initdb once per machine and PostgreSQL version (ctest runs every test in a
// process of its own, and initdb costs seconds); every server copies the
// result. Built in a temporary folder and renamed into place, so concurrent
// processes never see half a cluster.
const std::string& template_cluster() {
  static std::mutex mutex;
  static std::string data;
  std::lock_guard lock(mutex);
  if (!data.empty()) return data;
  std::string version = bindir();
  for (auto& c : version)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '-';
  const std::string shared =
      "/tmp/brubeck-pg-template-" + std::to_string(::geteuid()) + version + "-v1";
  if (::access((shared + "/data/PG_VERSION").c_str(), F_OK) == 0) return data = shared + "/data";

  TempDir made("brubeck-pg-template");
  open_up(made);
  std::string path = made.path() + "/data";
  make_owned_dir(path);
  auto [program, args] =
      as_postgres(bindir() + "/initdb",
                  {"-D", path, "-A", "trust", "-U", "postgres", "-N", "-E", "UTF8", "--no-locale"});
  ChildOptions options;
  options.cwd = made.path();
  auto [status, output] = run_process(program, args, 120s, options);
  if (status != 0)
    throw std::runtime_error("initdb failed (status " + std::to_string(status) + "):\n" +
                             tail(output, 4000));
  if (::rename(made.path().c_str(), shared.c_str()) != 0 &&
      ::access((shared + "/data/PG_VERSION").c_str(), F_OK) != 0)
    throw_errno("rename " + made.path() + " to " + shared);
  return data = shared + "/data";
}

bool bind_failed(const std::string& log) {
  return log.find("could not bind") != std::string::npos ||
         log.find("Address already in use") != std::string::npos;
}

}  // namespace

PostgresServer::PostgresServer() : dir_("brubeck-pg") {
  open_up(dir_);
  data_dir_ = dir_.path() + "/data";
  socket_dir_ = dir_.path() + "/run";
  const std::string& source = template_cluster();
  auto [status, output] = run_process("cp", {"-a", source, data_dir_}, 60s);
  if (status != 0) throw std::runtime_error("copying the template cluster failed:\n" + output);
  make_owned_dir(socket_dir_);
  // A free port can be taken between choosing and binding: try another.
  for (int attempt = 1;; ++attempt) {
    port_ = free_tcp_port();
    try {
      launch();
      return;
    } catch (const std::exception&) {
      std::string text = log();
      server_.stop(SIGKILL, 5s);
      if (attempt == 3 || !bind_failed(text)) throw;
    }
  }
}

PostgresServer::~PostgresServer() {
  try {
    stop();
  } catch (...) {
  }
}

std::string PostgresServer::conninfo() const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=postgres";
}

void PostgresServer::stop() {
  if (server_.pid() > 0) server_.stop(SIGINT, 15s);
}

void PostgresServer::start() {
  if (running()) throw std::logic_error("PostgresServer::start: already running");
  launch();
}

bool PostgresServer::running() { return server_.pid() > 0 && server_.running(); }

std::string PostgresServer::log() const { return server_.output(); }

void PostgresServer::launch() {
  const std::string port = std::to_string(port_);
  // Durability is of no use to a throwaway server, and costs time.
  auto [program, args] =
      as_postgres(bindir() + "/postgres", {"-D", data_dir_, "-p", port, "-k", socket_dir_, "-c",
                                           "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c",
                                           "synchronous_commit=off", "-c", "full_page_writes=off"});
  ChildOptions options;
  options.cwd = dir_.path();
  server_.start(program, args, options);

  const auto deadline = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    if (!server_.running())
      throw std::runtime_error("postgres exited during start-up (status " +
                               std::to_string(server_.exit_status().value_or(-1)) + "):\n" +
                               tail(log(), 4000));
    // Accepting TCP is not enough: during recovery it still refuses sessions.
    if (port_accepts(port_, 200ms)) {
      auto [status, output] =
          run_process(bindir() + "/pg_isready",
                      {"-q", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-t", "2"}, 10s);
      if (status == 0) break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      server_.stop(SIGKILL, 5s);
      throw std::runtime_error("postgres did not get ready within 30 s:\n" + tail(log(), 4000));
    }
    std::this_thread::sleep_for(20ms);
  }
  auto [status, output] = run_process(bindir() + "/psql",
                                      {"-X", "-At", "-h", "127.0.0.1", "-p", port, "-U", "postgres",
                                       "-d", "postgres", "-c", "SELECT 1"},
                                      10s);
  if (status != 0 || output.rfind("1", 0) != 0) {
    server_.stop(SIGKILL, 5s);
    throw std::runtime_error("postgres answers no query (psql status " + std::to_string(status) +
                             "): " + output + "\n" + tail(log(), 4000));
  }
}

}  // namespace brubeck::testing

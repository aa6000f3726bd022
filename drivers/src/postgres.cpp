#include "brubeck/drivers/postgres.hpp"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>

#include "brubeck/pipeline/offload.hpp"
#include "brubeck/pipeline/reactor.hpp"

namespace brubeck {

namespace {

Reactor& reactor() {
  auto* r = Reactor::current();
  if (r == nullptr || r->hub() == nullptr || r->hub() != FiberHub::current())
    throw std::logic_error("brubeck postgres: used outside a fiber of a running reactor");
  return *r;
}

// libpq's messages end in a newline (sometimes two lines of context).
std::string trimmed(const char* message) {
  std::string s = message != nullptr ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? std::string("unknown error") : s;
}

// Libpq prints notices (a DROP ... IF EXISTS that had nothing to drop) to
// stderr by default; on a server they are noise.
void ignore_notice(void*, const char*) {}

std::string error_text(const PGresult* r) {
  const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  if (primary == nullptr) return trimmed(PQresultErrorMessage(r));
  std::string text = primary;
  if (const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)) {
    text += " (";
    text += detail;
    text += ")";
  }
  return text;
}

using Options = std::vector<std::pair<std::string, std::string>>;

std::string* option(Options& options, std::string_view keyword) {
  for (auto& [k, v] : options)
    if (k == keyword) return &v;
  return nullptr;
}

bool numeric_address(const std::string& host) {
  in6_addr buffer;
  return ::inet_pton(AF_INET, host.c_str(), &buffer) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &buffer) == 1;
}

// libpq resolves a host name with a blocking getaddrinfo inside the connect,
// which would stall the whole shard: resolve it on the offload pool instead
// and hand libpq the addresses (hostaddr), one host entry per address so
// that libpq still tries each in turn. Lists of hosts and socket paths are
// left to libpq.
void resolve_host(Options& options, std::optional<Clock::time_point> deadline) {
  std::string* host = option(options, "host");
  if (host == nullptr || option(options, "hostaddr") != nullptr) return;
  const std::string name = *host;
  if (name.empty() || name.find(',') != std::string::npos || name[0] == '/' || name[0] == '@' ||
      numeric_address(name))
    return;
  auto addresses = offload(
      [name] {
        std::vector<std::string> found;
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* list = nullptr;
        if (::getaddrinfo(name.c_str(), nullptr, &hints, &list) != 0) return found;
        for (addrinfo* a = list; a != nullptr; a = a->ai_next) {
          char text[INET6_ADDRSTRLEN] = {};
          const void* raw =
              a->ai_family == AF_INET
                  ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                  : static_cast<const void*>(
                        &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
          if (::inet_ntop(a->ai_family, raw, text, sizeof text) != nullptr &&
              std::find(found.begin(), found.end(), text) == found.end())
            found.emplace_back(text);
        }
        ::freeaddrinfo(list);
        return found;
      },
      deadline);
  if (addresses.empty()) throw Unavailable("postgres connect: cannot resolve host " + name);
  std::string hosts, hostaddrs;
  for (const auto& address : addresses) {
    if (!hosts.empty()) {
      hosts += ',';
      hostaddrs += ',';
    }
    hosts += name;  // still the name, for TLS checks and messages
    hostaddrs += address;
  }
  *host = hosts;
  options.emplace_back("hostaddr", hostaddrs);
}

}  // namespace

// ------------------------------------------------------------------ PgResult

PgResult::~PgResult() {
  if (result_ != nullptr) PQclear(result_);
}

PgResult::PgResult(PgResult&& o) noexcept : result_(std::exchange(o.result_, nullptr)) {}

PgResult& PgResult::operator=(PgResult&& o) noexcept {
  if (this != &o) {
    if (result_ != nullptr) PQclear(result_);
    result_ = std::exchange(o.result_, nullptr);
  }
  return *this;
}

std::size_t PgResult::rows() const noexcept {
  return result_ != nullptr ? static_cast<std::size_t>(PQntuples(result_)) : 0;
}

std::size_t PgResult::columns() const noexcept {
  return result_ != nullptr ? static_cast<std::size_t>(PQnfields(result_)) : 0;
}

std::string_view PgResult::column_name(std::size_t column) const {
  if (column >= columns()) throw std::out_of_range("PgResult: no column " + std::to_string(column));
  return PQfname(result_, static_cast<int>(column));
}

std::size_t PgResult::column_index(std::string_view name) const {
  for (std::size_t i = 0; i < columns(); ++i)
    if (name == PQfname(result_, static_cast<int>(i))) return i;
  throw std::out_of_range("PgResult: no column named " + std::string(name));
}

void PgResult::check(std::size_t row, std::size_t column) const {
  if (row >= rows() || column >= columns())
    throw std::out_of_range("PgResult: no cell (" + std::to_string(row) + ", " +
                            std::to_string(column) + ")");
}

std::optional<std::string_view> PgResult::get(std::size_t row, std::size_t column) const {
  check(row, column);
  int r = static_cast<int>(row), c = static_cast<int>(column);
  if (PQgetisnull(result_, r, c) != 0) return std::nullopt;
  return std::string_view(PQgetvalue(result_, r, c),
                          static_cast<std::size_t>(PQgetlength(result_, r, c)));
}

bool PgResult::is_null(std::size_t row, std::size_t column) const {
  check(row, column);
  return PQgetisnull(result_, static_cast<int>(row), static_cast<int>(column)) != 0;
}

std::size_t PgResult::affected_rows() const noexcept {
  if (result_ == nullptr) return 0;
  std::string_view tuples = PQcmdTuples(result_);
  std::size_t n = 0;
  std::from_chars(tuples.data(), tuples.data() + tuples.size(), n);
  return n;
}

std::string_view PgResult::command_status() const noexcept {
  return result_ != nullptr ? PQcmdStatus(result_) : "";
}

// -------------------------------------------------------------- PgConnection

PgConnection::~PgConnection() { close(); }

PgConnection::PgConnection(PgConnection&& o) noexcept
    : conn_(std::exchange(o.conn_, nullptr)), busy_(std::exchange(o.busy_, false)) {}

PgConnection& PgConnection::operator=(PgConnection&& o) noexcept {
  if (this != &o) {
    close();
    conn_ = std::exchange(o.conn_, nullptr);
    busy_ = std::exchange(o.busy_, false);
  }
  return *this;
}

void PgConnection::close() noexcept {
  if (conn_ != nullptr) PQfinish(std::exchange(conn_, nullptr));
}

bool PgConnection::ok() const noexcept {
  return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK;
}

bool PgConnection::in_transaction() const noexcept {
  return conn_ != nullptr && PQtransactionStatus(conn_) != PQTRANS_IDLE;
}

bool PgConnection::alive() {
  if (!ok()) return false;
  if (busy_) return true;
  // Reading drains notices and a goodbye ("terminating connection due to
  // administrator command"); the close that follows the goodbye may not have
  // been read yet, hence the peek.
  if (PQconsumeInput(conn_) == 0) {
    close();
    return false;
  }
  char byte;
  ssize_t n = ::recv(PQsocket(conn_), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    close();
    return false;
  }
  return ok();
}

void PgConnection::fail_unavailable(std::string_view what) {
  std::string message = "postgres " + std::string(what) + ": ";
  message += conn_ != nullptr ? trimmed(PQerrorMessage(conn_)) : "connection is closed";
  close();
  throw Unavailable(message);
}

bool PgConnection::wait(std::uint32_t events, Deadline deadline) {
  int fd = PQsocket(conn_);
  if (fd < 0) fail_unavailable("socket");
  return reactor().wait_fd(fd, events, deadline);
}

void PgConnection::abandon() noexcept {
  if (conn_ == nullptr) return;
  if (PQtransactionStatus(conn_) == PQTRANS_ACTIVE) {
    // Closing alone would not stop the statement: the server notices a gone
    // client only when it next writes to it, after the statement's end.
    if (PGcancel* cancel = PQgetCancel(conn_)) {
      bool submitted = false;
      try {
        submitted = OffloadPool::default_pool().try_submit([cancel] {
          char error[256];
          PQcancel(cancel, error, sizeof error);
          PQfreeCancel(cancel);
        });
      } catch (...) {
      }
      if (!submitted) PQfreeCancel(cancel);
    }
  }
  close();
}

PgConnection PgConnection::connect(const std::string& conninfo, Deadline deadline) {
  (void)reactor();
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string message = parse_error != nullptr ? trimmed(parse_error) : "out of memory";
    if (parse_error != nullptr) PQfreemem(parse_error);
    throw std::invalid_argument("postgres: bad conninfo: " + message);
  }
  std::vector<std::pair<std::string, std::string>> options;
  for (PQconninfoOption* o = parsed; o->keyword != nullptr; ++o)
    if (o->val != nullptr && *o->val != '\0') options.emplace_back(o->keyword, o->val);
  PQconninfoFree(parsed);
  resolve_host(options, deadline);
  std::vector<const char*> keywords, values;
  for (const auto& [keyword, value] : options) {
    keywords.push_back(keyword.c_str());
    values.push_back(value.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);

  PgConnection c(PQconnectStartParams(keywords.data(), values.data(), 0));
  if (c.conn_ == nullptr) throw std::bad_alloc();
  if (PQstatus(c.conn_) == CONNECTION_BAD) c.fail_unavailable("connect");
  PQsetNoticeProcessor(c.conn_, ignore_notice, nullptr);
  // libpq's protocol: start as if the poll had asked to wait for writing, and
  // re-read the socket every time (it changes when libpq tries the next
  // address of a host).
  PostgresPollingStatusType status = PGRES_POLLING_WRITING;
  while (status != PGRES_POLLING_OK) {
    if (status == PGRES_POLLING_FAILED) c.fail_unavailable("connect");
    if (!c.wait(status == PGRES_POLLING_READING ? EPOLLIN : EPOLLOUT, deadline))
      throw Timeout("postgres connect timed out");
    status = PQconnectPoll(c.conn_);
  }
  // Nonblocking sends: a large statement is flushed by waiting for EPOLLOUT
  // instead of blocking the shard in send().
  if (PQsetnonblocking(c.conn_, 1) != 0) c.fail_unavailable("connect");
  return c;
}

template <class Send>
PgResult PgConnection::run(Send&& send, Deadline deadline) {
  if (!ok()) throw Unavailable("postgres: the connection is closed or broken");
  if (busy_) throw std::logic_error("brubeck postgres: a connection used by two fibers at once");
  busy_ = true;
  struct Idle {
    bool& busy;
    ~Idle() { busy = false; }
  } idle{busy_};

  if (send(conn_) == 0) {
    if (PQstatus(conn_) == CONNECTION_BAD) fail_unavailable("send");
    throw PgError(trimmed(PQerrorMessage(conn_)), "");  // refused by libpq itself
  }
  // Any way out of a wait but its end (the deadline, the request's deadline,
  // a cancelled fiber) leaves the statement running: the connection is lost.
  auto wait_or_abandon = [&](std::uint32_t events) {
    bool ready;
    try {
      ready = wait(events, deadline);
    } catch (...) {
      abandon();
      throw;
    }
    if (!ready) {
      abandon();
      throw Timeout("postgres query timed out");
    }
    if (PQconsumeInput(conn_) == 0) fail_unavailable("receive");
  };

  for (;;) {
    int flushed = PQflush(conn_);
    if (flushed == 0) break;
    if (flushed < 0) fail_unavailable("send");
    // The server may be blocked writing to us: read while waiting to write.
    wait_or_abandon(EPOLLIN | EPOLLOUT);
  }

  PgResult last;
  PgResult error;
  bool failed = false;
  bool copy = false;
  for (;;) {
    while (PQisBusy(conn_) != 0) wait_or_abandon(EPOLLIN);
    PGresult* raw = PQgetResult(conn_);
    if (raw == nullptr) break;
    PgResult result(raw);
    switch (PQresultStatus(raw)) {
      case PGRES_COMMAND_OK:
      case PGRES_TUPLES_OK:
      case PGRES_EMPTY_QUERY:
        last = std::move(result);
        break;
      case PGRES_COPY_IN:
      case PGRES_COPY_OUT:
      case PGRES_COPY_BOTH:
        copy = true;
        break;
      default:  // the first error is the cause; the rest follow from it
        if (!failed) error = std::move(result);
        failed = true;
        break;
    }
    if (copy) break;
  }
  if (copy) {
    abandon();
    throw std::logic_error("brubeck postgres: COPY is not supported");
  }
  // A server shutting down sends an error (57P01) and then closes.
  if (PQstatus(conn_) == CONNECTION_BAD) fail_unavailable("query");
  if (failed) {
    PGresult* raw = error.raw();
    const char* sqlstate = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
    throw PgError(error_text(raw), sqlstate != nullptr ? sqlstate : "");
  }
  return last;
}

PgResult PgConnection::query(std::string_view sql, const PgParams& params, Deadline deadline) {
  if (params.size() > 65535) throw PgError("postgres: more than 65535 parameters", "");
  std::string text(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return run(
      [&](PGconn* conn) {
        return PQsendQueryParams(conn, text.c_str(), static_cast<int>(values.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0);
      },
      deadline);
}

PgResult PgConnection::execute_script(std::string_view sql, Deadline deadline) {
  std::string text(sql);
  return run([&](PGconn* conn) { return PQsendQuery(conn, text.c_str()); }, deadline);
}

// -------------------------------------------------------------------- PgPool

PgPool::PgPool(std::string conninfo, std::size_t size)
    : conninfo_(std::move(conninfo)), size_(size) {
  if (size_ == 0) throw std::invalid_argument("PgPool: size must be at least 1");
}

PgPool::~PgPool() = default;

PgPool::Lease::Lease(Lease&& o) noexcept
    : pool_(std::exchange(o.pool_, nullptr)), conn_(std::move(o.conn_)) {}

PgPool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->release(std::move(conn_));
}

void PgPool::release(std::unique_ptr<PgConnection> conn) noexcept {
  // No lock needed: the shard's fibers switch only where they wait, and
  // nothing here waits.
  if (conn != nullptr && conn->ok() && !conn->in_transaction()) {
    idle_.push_back(std::move(conn));
  } else {
    conn.reset();  // closing rolls back a transaction left open
    --open_;
  }
  available_.notify_one();
}

PgPool::Lease PgPool::acquire(Deadline deadline) {
  std::unique_lock lock(mutex_);
  for (;;) {
    while (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      if (conn->alive()) return Lease(this, std::move(conn));
      --open_;  // the server closed it while idle
    }
    if (open_ < size_) break;
    if (!available_.wait(
            lock, [&] { return !idle_.empty() || open_ < size_; }, deadline))
      throw Timeout("postgres pool: no free connection before the deadline");
  }
  // The slot is taken before connecting, which waits: others must not
  // overshoot `size` meanwhile.
  ++open_;
  lock.unlock();
  try {
    return Lease(this, std::make_unique<PgConnection>(PgConnection::connect(conninfo_, deadline)));
  } catch (...) {
    --open_;
    available_.notify_one();
    throw;
  }
}

PgResult PgPool::query(std::string_view sql, const PgParams& params, Deadline deadline) {
  auto lease = acquire(deadline);
  return lease->query(sql, params, deadline);
}

PgPool& PgPool::for_this_shard(const std::string& conninfo, std::size_t size) {
  thread_local std::unordered_map<std::string, std::unique_ptr<PgPool>> pools;
  auto& pool = pools[conninfo];
  if (pool == nullptr) pool = std::make_unique<PgPool>(conninfo, size);
  return *pool;
}

}  // namespace brubeck

#include "brubeck/drivers/redis.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <string_view>
#include <thread>
#include <utility>

#include "brubeck/pipeline/reactor.hpp"

namespace brubeck {
namespace detail {
namespace {

using Deadline = std::optional<Clock::time_point>;

// Hiredis writes with write(2), not send(MSG_NOSIGNAL): a write to a server
// that has just gone raises SIGPIPE, which kills the process by default. The
// signal is blocked on this thread around hiredis's writes and one that the
// write caused is swallowed, so a lost server costs an error and nothing else.
class SigpipeGuard {
 public:
  SigpipeGuard() noexcept {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    // Already blocked: whoever blocked it owns what is pending.
    active_ = sigismember(&old_, SIGPIPE) == 0;
  }
  ~SigpipeGuard() {
    if (!active_) return;
    sigset_t pending;
    sigemptyset(&pending);
    // Not blocked before, so one pending now is ours.
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
      timespec zero{0, 0};
      sigtimedwait(&pipe_, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool active_ = false;
};

RedisReply decode(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::string;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::status;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::error;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::integer;
      out.integer = static_cast<std::int64_t>(r.integer);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::array;
      out.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(decode(*r.element[i]));
      break;
    default:
      out.type = RedisReply::Type::nil;
      break;
  }
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Commands after which replies stop matching requests one to one. Hiredis
// 0.14 reuses (or asserts on) the callback of such a command, which would
// break the one-reply-per-command bookkeeping below.
bool turns_into_stream(const std::vector<std::string>& argv) {
  const std::string& name = argv.front();
  for (std::string_view s : {"subscribe", "psubscribe", "unsubscribe", "punsubscribe", "ssubscribe",
                             "sunsubscribe", "monitor"}) {
    if (iequals(name, s)) return true;
  }
  return iequals(name, "client") && argv.size() > 1 && iequals(argv[1], "reply");
}

// One command in flight. Hiredis's privdata owns a reference, so a fiber that
// gave up (timeout, cancellation) leaves a state that is still valid when the
// reply arrives later.
struct PendingCommand {
  FiberHub* hub = nullptr;
  WaitToken token;
  bool waiting =
      false;  // a fiber is suspended on token (a stale token is harmless, a dead hub not)
  bool done = false;
  bool lost = false;  // no reply: the connection went away first
  std::exception_ptr error;
  RedisReply reply;
};

void on_command_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<std::shared_ptr<PendingCommand>> owner(
      static_cast<std::shared_ptr<PendingCommand>*>(privdata));
  PendingCommand& p = **owner;
  try {
    if (reply == nullptr) {
      p.lost = true;
    } else {
      p.reply = decode(*static_cast<const redisReply*>(reply));
    }
  } catch (...) {
    p.error = std::current_exception();
  }
  p.done = true;
  if (p.waiting) p.hub->wake(p.token);
}

}  // namespace

// One hiredis async context on the reactor of the fiber that made it: its fd
// is registered level-triggered for whatever hiredis asks for, and hiredis's
// callbacks run from the reactor's fd callback (never inside a fiber), so
// they only record results and wake fibers.
class RedisConnection {
 public:
  RedisConnection(std::string host, std::uint16_t port)
      : host_(std::move(host)), port_(port), owner_(std::this_thread::get_id()) {
    reactor_ = Reactor::current();
    hub_ = FiberHub::current();
    if (reactor_ == nullptr || hub_ == nullptr || reactor_->hub() != hub_) {
      throw std::logic_error("brubeck: Redis connections are made from a fiber of a shard");
    }
    anchor_ = reactor_->anchor();
  }

  ~RedisConnection() { close(); }
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  void connect(Deadline deadline) {
    start_connect();
    struct Leave {
      bool& waiting;
      ~Leave() { waiting = false; }
    } leave{connect_waiting_};
    while (!connect_status_) {
      connect_token_ = hub_->prepare_wait();
      connect_waiting_ = true;
      if (!hub_->suspend(connect_token_, deadline) && !connect_status_) {
        close();
        throw Timeout("brubeck: connecting to Redis at " + describe() + " timed out");
      }
    }
    if (*connect_status_ != REDIS_OK || ac_ == nullptr) {
      close();
      throw Unavailable("brubeck: cannot connect to Redis at " + describe() + ": " + error_);
    }
  }

  // Opens the socket without waiting for it to connect. Hiredis holds
  // commands sent meanwhile and writes them once connected (or answers them
  // "lost" if the connect fails).
  void start_connect() {
    ac_ = redisAsyncConnect(host_.c_str(), port_);
    if (ac_ == nullptr) throw std::bad_alloc();
    if (ac_->err != 0) {
      error_ = ac_->c.errstr;
      redisAsyncFree(ac_);
      ac_ = nullptr;
      throw Unavailable("brubeck: cannot connect to Redis at " + describe() + ": " + error_);
    }
    ac_->data = this;
    fd_ = ac_->c.fd;
    ac_->ev.data = this;
    ac_->ev.addRead = [](void* self) { static_cast<RedisConnection*>(self)->want(EPOLLIN, true); };
    ac_->ev.delRead = [](void* self) { static_cast<RedisConnection*>(self)->want(EPOLLIN, false); };
    ac_->ev.addWrite = [](void* self) {
      static_cast<RedisConnection*>(self)->want(EPOLLOUT, true);
    };
    ac_->ev.delWrite = [](void* self) {
      static_cast<RedisConnection*>(self)->want(EPOLLOUT, false);
    };
    ac_->ev.cleanup = [](void* self) { static_cast<RedisConnection*>(self)->on_cleanup(); };
    // Connected is known at the first write event; this asks for it.
    redisAsyncSetConnectCallback(ac_, &RedisConnection::on_connect);
  }

  // Frees the context; what was in flight is answered "lost", with `reason`
  // as the error when one is given.
  void close(const char* reason = nullptr) noexcept {
    if (ac_ == nullptr) return;
    if (reason != nullptr) {
      try {
        error_ = reason;
      } catch (...) {
      }
    }
    // The fd may be taken off the reactor only on its thread, while it lives.
    touch_reactor_ = std::this_thread::get_id() == owner_ && (on_loop() || anchor_->post_fn([] {}));
    connect_waiting_ = false;
    redisAsyncFree(ac_);  // runs the pending callbacks with no reply, then on_cleanup
    ac_ = nullptr;
  }

  // The hub of the calling fiber, checked to be this connection's shard.
  FiberHub* require_fiber() const {
    if (FiberHub::current() != hub_ || !on_loop()) {
      throw std::logic_error("brubeck: a Redis connection is used from a fiber of its own shard");
    }
    return hub_;
  }

  // The live context (connected, or connecting after start_connect()), or
  // Unavailable saying why there is none.
  redisAsyncContext* usable() const {
    if (ac_ == nullptr) throw lost();
    return ac_;
  }

  Unavailable lost() const {
    return Unavailable("brubeck: Redis connection to " + describe() + " lost" +
                       (error_.empty() ? std::string() : ": " + error_));
  }

  bool connected() const noexcept { return ac_ != nullptr && connected_; }
  // Connected or still connecting: not known to be broken.
  bool alive() const noexcept { return ac_ != nullptr; }
  bool on_loop() const noexcept {
    auto* r = Reactor::current();
    return r != nullptr && r->anchor() == anchor_;
  }
  bool on_owner_thread() const noexcept { return std::this_thread::get_id() == owner_; }
  const std::shared_ptr<ReactorAnchor>& anchor() const noexcept { return anchor_; }
  std::string describe() const { return host_ + ":" + std::to_string(port_); }
  const std::string& host() const noexcept { return host_; }
  std::uint16_t port() const noexcept { return port_; }

  // Called (on the loop) when the context goes away, whatever the reason.
  std::function<void()> on_lost;

 private:
  static void on_connect(const redisAsyncContext* ac, int status) {
    auto* self = static_cast<RedisConnection*>(ac->data);
    self->connect_status_ = status;
    if (status == REDIS_OK) {
      self->connected_ = true;
    } else {
      try {
        self->error_ = ac->c.errstr;
      } catch (...) {
      }
    }
    if (self->connect_waiting_) self->hub_->wake(self->connect_token_);
  }

  void want(std::uint32_t flag, bool on) noexcept {
    std::uint32_t events = on ? (events_ | flag) : (events_ & ~flag);
    if (ac_ == nullptr || (registered_ && events == events_)) return;
    try {
      if (registered_) {
        reactor_->modify_fd(fd_, events);
      } else {
        if (events == 0) return;
        reactor_->add_fd(fd_, events, [this](std::uint32_t ready) { on_ready(ready); });
        registered_ = true;
      }
      events_ = events;
    } catch (const std::exception& e) {
      spdlog::error("redis {}: cannot watch fd {}: {}", describe(), fd_, e.what());
    }
  }

  void on_ready(std::uint32_t ready) noexcept {
    // Errors and hang-ups go to the read side, where hiredis notices them (a
    // failed connect included) and tears the context down: ac_ is null then.
    if (ac_ != nullptr && (ready & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
      redisAsyncHandleRead(ac_);
    }
    if (ac_ != nullptr && (ready & EPOLLOUT) != 0) {
      SigpipeGuard guard;
      redisAsyncHandleWrite(ac_);
    }
  }

  void on_cleanup() noexcept {
    try {
      if (error_.empty()) {
        error_ = ac_ != nullptr && ac_->c.err != 0 ? ac_->c.errstr : "connection closed";
      }
    } catch (...) {
    }
    if (registered_ && touch_reactor_) reactor_->remove_fd(fd_);
    registered_ = false;
    events_ = 0;
    ac_ = nullptr;
    connected_ = false;
    if (on_lost) {
      try {
        on_lost();
      } catch (...) {
      }
    }
  }

  std::string host_;
  std::uint16_t port_;
  std::thread::id owner_;
  Reactor* reactor_ = nullptr;
  FiberHub* hub_ = nullptr;
  std::shared_ptr<ReactorAnchor> anchor_;  // held, so its address names this reactor for good
  redisAsyncContext* ac_ = nullptr;        // null once hiredis freed it (or we did)
  int fd_ = -1;
  std::uint32_t events_ = 0;
  bool registered_ = false;
  bool touch_reactor_ = true;
  bool connected_ = false;
  std::string error_;  // why the connection failed or ended
  std::optional<int> connect_status_;
  WaitToken connect_token_;
  bool connect_waiting_ = false;
};

// A subscription's queue; the connection is its last member, so freeing the
// context (which calls back into the queue) happens while the queue lives.
class RedisSubscriber {
 public:
  RedisSubscriber(std::string host, std::uint16_t port) : connection(std::move(host), port) {}
  ~RedisSubscriber() { connection.close(); }

  static void on_reply(redisAsyncContext*, void* reply, void* privdata) {
    auto& self = *static_cast<RedisSubscriber*>(privdata);
    try {
      if (reply == nullptr) {
        self.closed = true;
      } else if (const auto& r = *static_cast<const redisReply*>(reply);
                 r.type == REDIS_REPLY_ARRAY && r.elements >= 3 &&
                 r.element[0]->type == REDIS_REPLY_STRING) {
        std::string_view kind(r.element[0]->str, r.element[0]->len);
        if (kind == "message" && r.element[1]->type == REDIS_REPLY_STRING &&
            r.element[2]->type == REDIS_REPLY_STRING) {
          self.queue.push_back(
              RedisSubscription::Message{std::string(r.element[1]->str, r.element[1]->len),
                                         std::string(r.element[2]->str, r.element[2]->len)});
        } else if (kind == "subscribe") {
          ++self.confirmed;
        }
      }
    } catch (...) {
      // Out of memory: losing a message beats letting an exception into hiredis.
    }
    self.wake();
  }

  void wake() noexcept {
    if (waiting) hub->wake(token);
  }

  // Suspends once; false on timeout.
  bool wait(FiberHub* h, Deadline deadline) {
    struct Leave {
      bool& waiting;
      ~Leave() { waiting = false; }
    } leave{waiting};
    hub = h;
    token = h->prepare_wait();
    waiting = true;
    return h->suspend(token, deadline);
  }

  std::deque<RedisSubscription::Message> queue;
  std::size_t confirmed = 0;
  bool closed = false;
  FiberHub* hub = nullptr;
  WaitToken token;
  bool waiting = false;
  RedisConnection connection;
};

namespace {

// A client dropped on another thread (a handle that escaped its shard) is
// freed on its own reactor; when that reactor is gone, here.
template <class Pointer>
void destroy_on_owner(Pointer& p, RedisConnection& connection) noexcept {
  if (p == nullptr || connection.on_owner_thread()) {
    p.reset();
    return;
  }
  try {
    auto anchor = connection.anchor();
    anchor->post_fn([q = std::move(p)]() mutable { q.reset(); });
  } catch (...) {
    p.reset();
  }
}

thread_local std::map<std::pair<std::string, std::uint16_t>, std::shared_ptr<RedisClient>>
    tl_shard_clients;

RedisReply expect(RedisReply reply, RedisReply::Type type, const char* command) {
  if (reply.type != type) {
    throw std::runtime_error(std::string("brubeck: unexpected Redis reply type to ") + command);
  }
  return reply;
}

}  // namespace
}  // namespace detail

// ---------------------------------------------------------------- RedisClient

RedisClient::RedisClient(std::shared_ptr<detail::RedisConnection> connection)
    : connection_(std::move(connection)) {}

RedisClient::~RedisClient() {
  if (connection_ != nullptr) detail::destroy_on_owner(connection_, *connection_);
}

std::shared_ptr<RedisClient> RedisClient::connect(const std::string& host, std::uint16_t port,
                                                  Deadline deadline) {
  auto connection = std::make_shared<detail::RedisConnection>(host, port);
  connection->connect(deadline);
  return std::shared_ptr<RedisClient>(new RedisClient(std::move(connection)));
}

std::shared_ptr<RedisClient> RedisClient::for_this_shard(const std::string& host,
                                                         std::uint16_t port, Deadline deadline) {
  auto key = std::make_pair(host, port);
  auto usable = [&key]() -> std::shared_ptr<RedisClient> {
    auto it = detail::tl_shard_clients.find(key);
    if (it == detail::tl_shard_clients.end()) return nullptr;
    auto& c = it->second;
    return c->connected() && c->connection_->on_loop() ? c : nullptr;
  };
  if (auto c = usable()) return c;
  auto fresh = connect(host, port, deadline);
  // Another fiber may have connected meanwhile: share its connection.
  if (auto c = usable()) return c;
  detail::tl_shard_clients[key] = fresh;
  return fresh;
}

void RedisClient::drop_after_timeout(const detail::RedisConnection& timed_out) noexcept {
  // Another command on that connection timed out first and replaced it.
  if (connection_.get() != &timed_out) return;
  auto old = connection_;
  try {
    auto fresh = std::make_shared<detail::RedisConnection>(old->host(), old->port());
    fresh->start_connect();
    connection_ = std::move(fresh);
  } catch (const std::exception& e) {
    // The old connection is closed below all the same: this client is then
    // broken, like one whose server went away.
    spdlog::warn("redis {}: cannot reconnect after a timeout: {}", old->describe(), e.what());
  }
  old->close("dropped after an earlier command on it timed out (this one may or may not have run)");
}

RedisReply RedisClient::command(std::vector<std::string> argv, Deadline deadline) {
  // Held for the whole wait: a timeout in another fiber may replace
  // connection_ meanwhile.
  auto connection = connection_;
  auto& c = *connection;
  FiberHub* hub = c.require_fiber();
  if (argv.empty()) throw std::invalid_argument("brubeck: empty Redis command");
  if (argv.size() > INT_MAX) throw std::invalid_argument("brubeck: Redis command too long");
  if (detail::turns_into_stream(argv)) {
    throw std::invalid_argument("brubeck: " + argv.front() +
                                " is not for RedisClient::command (see RedisSubscription)");
  }
  redisAsyncContext* ac = c.usable();

  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto pending = std::make_shared<detail::PendingCommand>();
  pending->hub = hub;
  auto privdata = std::make_unique<std::shared_ptr<detail::PendingCommand>>(pending);
  // Hiredis copies the arguments into its output buffer before returning.
  if (redisAsyncCommandArgv(ac, &detail::on_command_reply, privdata.get(),
                            static_cast<int>(argv.size()), args.data(), lens.data()) != REDIS_OK) {
    throw c.lost();
  }
  privdata.release();  // hiredis calls back exactly once, with a reply or without

  struct Leave {
    bool& waiting;
    ~Leave() { waiting = false; }
  } leave{pending->waiting};
  // Past its deadline a command gives up its connection: Redis answers in
  // order, so every command behind it would otherwise wait for its reply (a
  // BLPOP, a slow script). A cancelled fiber keeps it: its reply is usually
  // near, and the commands behind still have their own deadlines.
  bool timed_out = false;
  try {
    while (!pending->done) {
      pending->token = hub->prepare_wait();
      pending->waiting = true;
      if (!hub->suspend(pending->token, deadline) && !pending->done) {
        timed_out = true;
        break;
      }
    }
  } catch (const DeadlineExceeded&) {
    pending->waiting = false;
    if (!pending->done) drop_after_timeout(c);
    throw;
  }
  if (timed_out) {
    pending->waiting = false;
    drop_after_timeout(c);
    throw Timeout("brubeck: Redis " + argv.front() + " on " + c.describe() + " timed out");
  }
  if (pending->error) std::rethrow_exception(pending->error);
  if (pending->lost) throw c.lost();
  if (pending->reply.is_error()) throw RedisError(pending->reply.str);
  return std::move(pending->reply);
}

std::int64_t RedisClient::incr(const std::string& key, Deadline deadline) {
  return detail::expect(command({"INCR", key}, deadline), RedisReply::Type::integer, "INCR")
      .integer;
}

std::optional<std::string> RedisClient::get(const std::string& key, Deadline deadline) {
  auto reply = command({"GET", key}, deadline);
  if (reply.is_nil()) return std::nullopt;
  return detail::expect(std::move(reply), RedisReply::Type::string, "GET").str;
}

void RedisClient::set(const std::string& key, const std::string& value, Deadline deadline) {
  detail::expect(command({"SET", key, value}, deadline), RedisReply::Type::status, "SET");
}

std::int64_t RedisClient::publish(const std::string& channel, const std::string& message,
                                  Deadline deadline) {
  return detail::expect(command({"PUBLISH", channel, message}, deadline), RedisReply::Type::integer,
                        "PUBLISH")
      .integer;
}

bool RedisClient::connected() const noexcept {
  return connection_ != nullptr && connection_->alive();
}

// ---------------------------------------------------------------- RedisSubscription

RedisSubscription::RedisSubscription(std::unique_ptr<detail::RedisSubscriber> subscriber)
    : subscriber_(std::move(subscriber)) {}

RedisSubscription::RedisSubscription(RedisSubscription&&) noexcept = default;

RedisSubscription& RedisSubscription::operator=(RedisSubscription&& other) noexcept {
  if (this != &other) {
    if (subscriber_ != nullptr) detail::destroy_on_owner(subscriber_, subscriber_->connection);
    subscriber_ = std::move(other.subscriber_);
  }
  return *this;
}

RedisSubscription::~RedisSubscription() {
  if (subscriber_ != nullptr) detail::destroy_on_owner(subscriber_, subscriber_->connection);
}

RedisSubscription RedisSubscription::open(const std::string& host, std::uint16_t port,
                                          std::vector<std::string> channels, Deadline deadline) {
  if (channels.empty()) throw std::invalid_argument("brubeck: subscribe to at least one channel");
  if (channels.size() >= INT_MAX) throw std::invalid_argument("brubeck: too many channels");
  auto s = std::make_unique<detail::RedisSubscriber>(host, port);
  auto& c = s->connection;
  auto* raw = s.get();
  c.on_lost = [raw] {
    raw->closed = true;
    raw->wake();
  };
  c.connect(deadline);
  FiberHub* hub = c.require_fiber();

  std::vector<const char*> args{"SUBSCRIBE"};
  std::vector<std::size_t> lens{9};
  for (const auto& ch : channels) {
    args.push_back(ch.data());
    lens.push_back(ch.size());
  }
  // The subscriber outlives the context (it frees it first), so hiredis may
  // call back with it any number of times: once per confirmation and message.
  if (redisAsyncCommandArgv(c.usable(), &detail::RedisSubscriber::on_reply, raw,
                            static_cast<int>(args.size()), args.data(), lens.data()) != REDIS_OK) {
    throw c.lost();
  }
  // Redis confirms each channel named, repeated ones included.
  while (s->confirmed < channels.size()) {
    if (s->closed) throw c.lost();
    if (!s->wait(hub, deadline) && s->confirmed < channels.size() && !s->closed) {
      throw Timeout("brubeck: subscribing on Redis at " + c.describe() + " timed out");
    }
  }
  return RedisSubscription(std::move(s));
}

std::optional<RedisSubscription::Message> RedisSubscription::next(Deadline deadline) {
  if (subscriber_ == nullptr) throw std::logic_error("brubeck: RedisSubscription moved from");
  auto& s = *subscriber_;
  FiberHub* hub = s.connection.require_fiber();
  if (s.waiting) throw std::logic_error("brubeck: one fiber at a time waits on a subscription");
  while (s.queue.empty() && !s.closed) {
    if (!s.wait(hub, deadline) && s.queue.empty() && !s.closed) {
      throw Timeout("brubeck: no Redis message on " + s.connection.describe() + " in time");
    }
  }
  if (s.queue.empty()) return std::nullopt;
  auto message = std::move(s.queue.front());
  s.queue.pop_front();
  return message;
}

bool RedisSubscription::connected() const noexcept {
  return subscriber_ != nullptr && subscriber_->connection.connected();
}

}  // namespace brubeck

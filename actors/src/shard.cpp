#include "brubeck/actors/shard.hpp"

#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <caf/behavior.hpp>
#include <caf/send.hpp>

#include <charconv>
#include <filesystem>
#include <future>
#include <unordered_map>
#include <zmq.hpp>

#include "brubeck/handlers/dispatch.hpp"
#include "brubeck/pipeline/codec.hpp"
#include "brubeck/pipeline/log_limiter.hpp"
#include "detail/loop_actor.hpp"
#include "detail/loop_thread.hpp"
#include "detail/messages.hpp"
#include "detail/pull_sockets.hpp"
#include "detail/reply_order.hpp"

namespace brubeck {

using detail::FrameBatchPtr;

Shard::Shard(caf::actor_system& system, zmq::context_t& zmq, ShardOptions options,
             std::vector<RouteSpec> routes)
    : system_(system),
      zmq_(zmq),
      options_(std::move(options)),
      routes_(std::move(routes)),
      metrics_(!options_.metrics        ? nullptr
               : options_.metrics_store ? options_.metrics_store
                                        : std::make_shared<ShardMetrics>(routes_.size())) {}

Shard::~Shard() {
  if (thread_.joinable()) {
    drain(std::chrono::milliseconds(0));
    join();
  }
}

caf::actor Shard::handle() const { return handle_ ? *handle_ : caf::actor{}; }

void Shard::drain(std::chrono::milliseconds grace) {
  if (handle_ && *handle_)
    caf::anon_send(*handle_, detail::drain_atom::value, static_cast<std::int64_t>(grace.count()));
}

void Shard::heartbeat(std::chrono::steady_clock::time_point now) {
  const auto sent = liveness_.beat_sent.load();
  if (liveness_.beat_answered.load() < sent || !handle_ || !*handle_) return;
  const std::int64_t stamp = now.time_since_epoch().count();
  liveness_.beat_sent.store(stamp);
  caf::anon_send(*handle_, detail::heartbeat_atom::value, stamp);
}

bool Shard::alive(std::chrono::steady_clock::time_point now,
                  std::chrono::nanoseconds window) const {
  if (liveness_.ended.load() || !handle_) return false;
  const auto sent = liveness_.beat_sent.load();
  if (liveness_.beat_answered.load() >= sent) return true;
  return now.time_since_epoch().count() - sent < window.count();
}

void Shard::join() {
  if (thread_.joinable()) thread_.join();
  handle_.reset();
}

namespace {

// A file Mongrel2 spooled an upload to, mapped read-only for the handler and
// deleted when the request is done, whatever happened.
class SpoolFile {
 public:
  // Null unless `reported` (a path inside Mongrel2's chroot) names a regular
  // file inside the configured upload store.
  static std::unique_ptr<SpoolFile> open(const HandlerSettings& settings,
                                         std::string_view reported) {
    if (settings.upload_store.empty()) return nullptr;
    std::error_code ec;
    auto store = std::filesystem::canonical(settings.upload_store, ec);
    if (ec) return nullptr;
    auto path =
        std::filesystem::weakly_canonical(std::filesystem::path(settings.mongrel2_chroot) /
                                              std::filesystem::path(reported).relative_path(),
                                          ec);
    if (ec) return nullptr;
    auto rel = path.lexically_relative(store);
    if (rel.empty() || rel.native().starts_with("..") ||
        !std::filesystem::is_regular_file(path, ec))
      return nullptr;
    auto spool = std::unique_ptr<SpoolFile>(new SpoolFile(path));
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nullptr;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      void* p =
          ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
      if (p != MAP_FAILED) {
        spool->data_ = p;
        spool->size_ = static_cast<std::size_t>(st.st_size);
      }
    }
    ::close(fd);
    if (st.st_size > 0 && spool->data_ == nullptr) return nullptr;
    return spool;
  }

  ~SpoolFile() {
    if (data_ != nullptr) ::munmap(data_, size_);
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }

  std::string_view bytes() const noexcept {
    return {static_cast<const char*>(data_), data_ ? size_ : 0};
  }

 private:
  explicit SpoolFile(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

void pin_to_core(std::size_t index) {
  auto cores = std::thread::hardware_concurrency();
  if (cores == 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(index % cores, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
    spdlog::warn("shard {}: could not pin to core {}", index, index % cores);
}

// Everything the shard thread owns, in construction order.
class ShardLoop final : public ReplyChannel {
 public:
  ShardLoop(caf::actor_system& system, zmq::context_t& zmq, const ShardOptions& options,
            std::vector<RouteSpec> specs, ShardStats& stats, ShardLiveness& liveness,
            ShardMetrics* metrics)
      : options_(options),
        stats_(stats),
        liveness_(liveness),
        observer_(options.access_log, metrics),
        hub_(std::make_unique<FiberHub>(with_stall_report(options.fibers))),
        reactor_(hub_.get(), options.reactor),
        routes_(std::move(specs)),
        // XPUB, not PUB: it shows Mongrel2's subscriptions, so the shard can
        // wait for them before taking requests (a PUB drops what it sends
        // before the subscriber's filter arrives: lost replies at start).
        pub_(zmq, zmq::socket_type::xpub),
        pulls_(acquire_pulls(zmq, options)) {
    pulls_->attach(reactor_);
    pub_.set(zmq::sockopt::sndhwm, options.pub_hwm);
    // At the high-water mark a send fails (and is counted) instead of
    // vanishing without a trace.
    pub_.set(zmq::sockopt::xpub_nodrop, 1);
    // Every subscription and unsubscription is reported, not only the first
    // and last of a topic: the count is then the number of Mongrel2s
    // listening (several recv_specs, a Mongrel2 that restarts).
    pub_.set(zmq::sockopt::xpub_verboser, 1);
    // Replies still queued at shutdown get a moment to reach Mongrel2.
    pub_.set(zmq::sockopt::linger, 1000);
    for (const auto& spec : options.recv_specs) pub_.connect(spec);
    await_subscribers();
    if (!pulls_->empty()) reactor_.add_poll_hook([this] { return pull(); });
    // Later (re)subscriptions, e.g. a restarted Mongrel2, queue up on the
    // XPUB: read them so they never pile up. A few times a second is enough,
    // and each empty read costs ZeroMQ two system calls.
    reactor_.add_poll_hook([this, next = Clock::now()]() mutable {
      auto now = Clock::now();
      if (now < next) return false;
      next = now + std::chrono::milliseconds(200);
      read_subscriptions();
      return false;
    });
    binding_ = std::make_unique<detail::LoopActorBinding>(system, reactor_, behavior());
    detail::set_current_requester(binding_->self(), options_.actors.get());
  }

  // A replacement takes over the sockets of the shard it replaces, and with
  // them the frames queued for it: nothing sent to a lone shard is lost
  // while it restarts.
  static std::shared_ptr<detail::PullSockets> acquire_pulls(zmq::context_t& zmq,
                                                            const ShardOptions& options) {
    if (!options.pull_handover)
      return std::make_shared<detail::PullSockets>(zmq, options.pull_specs);
    auto& slot = options.pull_handover->sockets;
    if (!slot) slot = std::make_shared<detail::PullSockets>(zmq, options.pull_specs);
    return slot;
  }

  // A fiber that computed past the threshold held up every request of this
  // shard meanwhile: counted, and said in a rate-limited line.
  FiberOptions with_stall_report(FiberOptions fibers) {
    fibers.on_stall = [this](std::uint64_t fiber, std::string_view route,
                             std::chrono::milliseconds ran) {
      stats_.stalls.fetch_add(1, std::memory_order_relaxed);
      stall_log_.warn(
          "shard {}: fiber {} ({}) ran {} ms without waiting: every other request of this shard "
          "waited as long",
          options_.index, fiber, route.empty() ? "no route" : route, ran.count());
    };
    return fibers;
  }

  // Ends the actor with an error, so the supervisor sees a failed shard.
  void fail() { binding_->shutdown(caf::make_error(caf::sec::runtime_error)); }

  ~ShardLoop() {
    detail::set_current_requester(nullptr, nullptr);
    binding_->shutdown();
    // Fibers still alive unwind now, while everything they may touch exists.
    hub_.reset();
  }

  const caf::actor& handle() const { return binding_->handle(); }
  void run() { reactor_.run(); }
  // The loop ended without a drain: the actor was killed or the loop threw.
  bool died() const noexcept { return !draining_; }

  // On the way out of a dead shard, or of one whose grace period ended:
  // every request still in flight gets a 503 (and its connection is closed,
  // since nothing else will answer it). Their fibers unwind without a reply.
  void answer_in_flight(std::string_view why = "the server restarted part of itself; retry") {
    std::vector<std::pair<std::string, std::uint64_t>> open;
    order_.for_each_connection(
        [&](std::string_view sender, std::uint64_t conn) { open.emplace_back(sender, conn); });
    for (const auto& [sender, conn] : open) {
      // Whatever is still held for it will not be sent: the 503 goes first.
      order_.drop(sender, conn, [](const FiberRef&) {});
      answer_unavailable(sender, std::to_string(conn), why);
    }
    if (!open.empty())
      spdlog::error("shard {}: answered 503 on {} connections with requests in flight",
                    options_.index, open.size());
  }
  std::size_t in_flight() const { return hub_->live(); }

 private:
  caf::behavior behavior() {
    return {
        [this](detail::frames_atom, const FrameBatchPtr& batch) {
          batch->taken.store(true, std::memory_order_release);
          for (std::size_t i = 0; i < batch->frames.size(); ++i) accept(batch, i);
        },
        [this](detail::drain_atom, std::int64_t grace_ms) { start_drain(grace_ms); },
        [this](detail::heartbeat_atom, std::int64_t sent) { liveness_.beat_answered.store(sent); },
    };
  }

  // Waits (bounded) until every recv_spec's subscriber has subscribed. A
  // Mongrel2 that is not up yet is not waited for beyond the bound: its
  // replies are lost until it subscribes, as with any PUB socket.
  void await_subscribers() {
    constexpr auto kWait = std::chrono::seconds(3);
    auto deadline = Clock::now() + kWait;
    const auto wanted = static_cast<std::int64_t>(options_.recv_specs.size());
    while (liveness_.subscriptions.load() < wanted && Clock::now() < deadline) {
      zmq::pollitem_t item{pub_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
      read_subscriptions();
    }
    if (const auto seen = liveness_.subscriptions.load(); seen < wanted)
      spdlog::warn(
          "shard {}: {} of {} Mongrel2 subscribers after {} s; replies to the others are "
          "dropped until they subscribe",
          options_.index, seen, wanted, kWait.count());
  }

  // (Un)subscriptions queued on the XPUB: the first byte is 1 to subscribe,
  // 0 to unsubscribe. Read so they never pile up, and counted for health.
  void read_subscriptions() {
    zmq::message_t sub;
    while (pub_.recv(sub, zmq::recv_flags::dontwait)) {
      if (sub.size() == 0) continue;
      const char kind = static_cast<const char*>(sub.data())[0];
      if (kind == 1) liveness_.subscriptions.fetch_add(1);
      if (kind == 0) liveness_.subscriptions.fetch_sub(1);
    }
  }

  // Single-shard mode: read up to 64 frames per socket per pass, as the
  // router would, and accept them as one batch.
  // Returns true while a socket may hold more (the reactor then passes again).
  bool pull() {
    if (!pulls_->armed()) return false;
    auto batch = std::make_shared<detail::FrameBatch>();
    pulls_->receive(batch->frames, 64);
    for (std::size_t i = 0; i < batch->frames.size(); ++i) accept(batch, i);
    return pulls_->armed();
  }

  void accept(const FrameBatchPtr& batch, std::size_t i) {
    if (observer_.active()) accepted_at_ = Clock::now();
    const auto& msg = batch->frames[i];
    std::string_view bytes(static_cast<const char*>(msg.data()), msg.size());
    Frame frame;
    const DecodeError err = decoder_.decode(bytes, frame);
    switch (frame_action(bytes, err, frame)) {
      case FrameAction::serve:
        break;
      case FrameAction::disconnect:
        stats_.disconnects.fetch_add(1, std::memory_order_relaxed);
        cancel_connection(frame.sender, frame.conn_id);
        return;  // never answered
      case FrameAction::reject: {
        stats_.malformed.fetch_add(1, std::memory_order_relaxed);
        const auto key = peek_route_key(bytes);
        const std::string_view why = err != DecodeError::ok            ? to_string(err)
                                     : frame.find("METHOD") == nullptr ? "no METHOD"
                                                                       : "no PATH";
        if (const auto slot = open_slot(key->sender, key->conn_id))
          reject(key->sender, key->conn_id, slot, 400, "malformed request: " + std::string(why));
        return;
      }
      case FrameAction::close: {
        stats_.ignored.fetch_add(1, std::memory_order_relaxed);
        malformed_log_.warn("shard {}: conn {}: closed: socket messages are not supported",
                            options_.index, frame.conn_id);
        if (const auto slot = open_slot(frame.sender, frame.conn_id))
          send_in_order(frame.sender, frame.conn_id, slot, {}, true);
        return;
      }
      case FrameAction::drop: {
        stats_.malformed.fetch_add(1, std::memory_order_relaxed);
        malformed_log_.warn(
            "shard {}: dropped a frame of {} bytes with no readable sender and conn id: {}",
            options_.index, bytes.size(), to_string(err));
        return;
      }
    }
    // Every answer to this request, refusals included, takes its place
    // behind the replies to the connection's earlier requests.
    const std::uint64_t slot = open_slot(frame.sender, frame.conn_id);
    if (slot == 0) return;
    // Mongrel2 has already switched such a connection to its WebSocket mode:
    // an ordinary reply would leave it open there, so refuse and close.
    if (const Header* method = frame.find("METHOD");
        method->value == "WEBSOCKET_HANDSHAKE" || method->value == "WEBSOCKET") {
      reject(frame, slot, 501, "WebSockets are not supported yet");
      return;
    }
    if (bytes.size() - frame.body.size() > options_.max_header_bytes) {
      discard_spool(frame);
      reject(frame, slot, 431, "request headers too large");
      return;
    }
    if (frame.upload_start.empty() && frame.body.size() > options_.settings->max_body_bytes) {
      reject(frame, slot, 413, "request body too large");
      return;
    }
    if (hub_->live() >= options_.max_in_flight) {
      discard_spool(frame);
      overloaded(frame, slot);
      return;
    }
    // The request keeps the whole batch alive (aliasing, no allocation per frame).
    std::shared_ptr<const void> storage(batch, &msg);
    if (!frame.upload_start.empty() && !accept_upload(frame, storage, slot)) return;
    stats_.requests.fetch_add(1, std::memory_order_relaxed);
    // At debug level a request's start shows, so "in flight" can be seen
    // (by an operator, by tests) instead of guessed from time.
    if (spdlog::should_log(spdlog::level::debug))
      spdlog::debug("shard {}: conn {}: {} {} started", options_.index, frame.conn_id,
                    frame.find("METHOD")->value, frame.path);
    const auto conn = conn_number(frame.conn_id);
    std::string_view sender = frame.sender;  // points into the batch, not into `frame`
    auto ref = hub_->spawn([this, slot, frame = std::move(frame), storage = std::move(storage),
                            start = accepted_at_]() mutable {
      Request request(std::move(frame), std::move(storage), options_.index, slot);
      SlotGuard guard{*this, request};
      auto result = dispatch(routes_, request, *options_.settings, this);
      // Observed before the reply leaves: a client that has its reply
      // finds it counted.
      if (observer_.active()) finished(request, result, start);
      if (!result.sent) reply(request, result);
      // A DeferredReply ends the slot when it finishes.
      if (result.deferred) guard.release();
    });
    // Registered now, not when the fiber starts: a disconnect in the same
    // batch must find it too.
    order_.set_fiber(sender, conn, slot, ref);
  }

  // The one completion point of a request a handler answered (the access
  // log's and the metrics' source, through the observer).
  void finished(const Request& request, const Dispatched& result, Clock::time_point start) {
    Completion c = describe(request);
    c.status = result.response.status;
    c.bytes = result.sent           ? Completion::kUnknownBytes
              : result.include_body ? result.response.body.size()
                                    : 0;
    c.route = result.route != nullptr ? routes_.index_of(result.route) : routes_.size();
    stats_.finished.fetch_add(1, std::memory_order_relaxed);
    stats_.fibers.store(hub_->live(), std::memory_order_relaxed);
    observe(c, start);
  }
  // ...and of one the shard answered itself (a refusal: no route ran).
  void observe(Completion& c, Clock::time_point start) {
    c.micros = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
    c.shard = options_.index;
    if (c.route == Completion{}.route) c.route = routes_.size();
    observer_.completed(c);
  }
  Completion describe(const Request& r) const {
    Completion c;
    c.method = r.method();
    c.path = r.path();
    c.conn_id = r.conn_id();
    if (!observer_.logs()) return c;  // the metrics need no more
    c.query = r.query_string();
    c.version = r.version();
    c.remote = r.remote_addr();
    c.referer = r.header_or("referer", "");
    c.user_agent = r.header_or("user-agent", "");
    return c;
  }
  Completion describe(const Frame& f) const {
    auto value = [&f](std::string_view name) {
      const Header* h = f.find(name);
      return h != nullptr ? h->value : std::string_view{};
    };
    Completion c;
    c.method = value("METHOD");
    c.path = f.path;
    c.conn_id = f.conn_id;
    if (!observer_.logs()) return c;
    c.query = value("QUERY");
    c.version = value("VERSION");
    c.remote = value("REMOTE_ADDR");
    if (c.remote.empty()) c.remote = value("x-forwarded-for");
    c.referer = value("referer");
    c.user_agent = value("user-agent");
    return c;
  }

  // The connection's next reply slot; 0 when the connection is over its
  // pipelining limits, which closes it.
  std::uint64_t open_slot(std::string_view sender, std::string_view conn_id) {
    const auto slot = order_.open(sender, conn_number(conn_id));
    if (slot == 0) overflowed(sender, conn_id, "requests");
    return slot;
  }

  // Ends a request's slot when its fiber ends, whatever way: the replies
  // behind it must not wait for one that will never come.
  class SlotGuard {
   public:
    SlotGuard(ShardLoop& loop, const Request& request) : loop_(loop), request_(&request) {}
    SlotGuard(const SlotGuard&) = delete;
    SlotGuard& operator=(const SlotGuard&) = delete;
    ~SlotGuard() {
      if (request_ != nullptr)
        loop_.order_.finish(request_->sender(), request_->conn_id(),
                            conn_number(request_->conn_id()), request_->reply_slot());
    }
    void release() noexcept { request_ = nullptr; }

   private:
    ShardLoop& loop_;
    const Request* request_;
  };

  // A client that pipelines more than the shard will hold for it: closed.
  void overflowed(std::string_view sender, std::string_view conn_id, std::string_view what) {
    stats_.rejected.fetch_add(1, std::memory_order_relaxed);
    reject_log_.warn("shard {}: conn {}: closed: too many pipelined {} waiting for earlier replies",
                     options_.index, conn_id, what);
    close_connection(sender, conn_id);
    cancel_connection(sender, conn_id);
  }

  static std::uint64_t conn_number(std::string_view id) {
    std::uint64_t n = 0;
    std::from_chars(id.data(), id.data() + id.size(), n);  // the codec checked the digits
    return n;
  }

  // The connection is gone: its fibers are cancelled, and what was held for
  // it is discarded.
  void cancel_connection(std::string_view sender, std::string_view conn_id) {
    std::size_t n = 0;
    order_.drop(sender, conn_number(conn_id), [&](const FiberRef& fiber) {
      if (fiber.fiber_id != 0 && hub_->cancel(fiber)) ++n;
    });
    if (n == 0) return;
    stats_.cancelled.fetch_add(n, std::memory_order_relaxed);
    spdlog::debug("shard {}: conn {} disconnected: {} request(s) cancelled", options_.index,
                  conn_id, n);
  }

  // Mongrel2 spools bodies over its limit to a file: first a frame with
  // upload-start (answered only to refuse the upload), then one with both
  // headers once the file is complete. Returns true when `frame` should go
  // on to a handler, with its body now the spooled file.
  bool accept_upload(Frame& frame, std::shared_ptr<const void>& storage, std::uint64_t slot) {
    const auto& settings = *options_.settings;
    if (frame.upload_done.empty()) {
      std::size_t declared = 0;
      if (auto* h = frame.find("content-length")) {
        auto [p, ec] =
            std::from_chars(h->value.data(), h->value.data() + h->value.size(), declared);
        (void)p;
        if (ec != std::errc()) declared = 0;
      }
      // The route's handler decides (in a fiber: it may wait, e.g. on a
      // quota lookup). Answering before the upload is done makes Mongrel2
      // cancel it; accepting sends nothing.
      // Accepted, it has no reply of its own: the upload-done frame will.
      hub_->spawn([this, slot, frame = std::move(frame), storage, declared]() mutable {
        Request request(std::move(frame), std::move(storage), options_.index, slot);
        SlotGuard guard{*this, request};
        if (int status = admit_upload(routes_, request, *options_.settings, declared))
          reject(request, slot, status, "upload refused");
      });
      return false;
    }
    if (frame.upload_start != frame.upload_done) {
      reject(frame, slot, 400, "upload-start and upload-done differ");
      return false;
    }
    auto spool = SpoolFile::open(settings, frame.upload_done);
    if (!spool) {
      reject(frame, slot, 400, "upload file outside Mongrel2's upload store");
      return false;
    }
    frame.body = spool->bytes();
    stats_.uploads.fetch_add(1, std::memory_order_relaxed);
    // The spool file lives (and is deleted) with the request.
    auto holder =
        std::make_shared<std::pair<std::shared_ptr<const void>, std::unique_ptr<SpoolFile>>>(
            std::move(storage), std::move(spool));
    storage = std::shared_ptr<const void>(holder, holder.get());
    return true;
  }

  // A finished upload refused before it reaches a handler: Mongrel2 has
  // handed the file over, so nobody else would ever delete it.
  void discard_spool(const Frame& frame) {
    if (!frame.upload_done.empty() && frame.upload_done == frame.upload_start)
      SpoolFile::open(*options_.settings, frame.upload_done).reset();  // deletes it
  }

  // Full: a 503 the client may retry. The connection stays open unless the
  // request asked for it to close (HTTP/1.0, Connection: close): a client
  // that reads to the end of the stream would otherwise wait forever.
  void overloaded(const Frame& frame, std::uint64_t slot) {
    stats_.overloaded.fetch_add(1, std::memory_order_relaxed);
    overload_log_.warn("shard {}: {} requests in flight, answering 503", options_.index,
                       hub_->live());
    auto response = error_response(503, "busy, retry shortly");
    response.set_header("Retry-After", "1");
    if (observer_.active()) {
      Completion c = describe(frame);
      c.status = 503;
      c.bytes = response.body.size();
      observe(c, accepted_at_);
    }
    send_response(frame.sender, frame.conn_id, slot, response, wants_close(frame));
  }

  template <class Message>  // a Frame or a Request: both have sender and conn id
  void reject(const Message& frame, std::uint64_t slot, int status, std::string_view why) {
    reject(sender_of(frame), conn_id_of(frame), slot, status, why,
           observer_.active() ? describe(frame) : Completion{});
  }
  // A refusal always closes: the request's body may still be on its way.
  // `c`: what is known of the request (nothing of a malformed frame).
  void reject(std::string_view sender, std::string_view conn_id, std::uint64_t slot, int status,
              std::string_view why, Completion c = {}) {
    stats_.rejected.fetch_add(1, std::memory_order_relaxed);
    reject_log_.warn("shard {}: conn {}: {} ({})", options_.index, conn_id, status, why);
    auto response = error_response(status, why);
    if (observer_.active()) {
      c.conn_id = conn_id;
      c.status = status;
      c.bytes = response.body.size();
      observe(c, accepted_at_);
    }
    send_response(sender, conn_id, slot, response, /*close=*/true);
  }
  void answer_unavailable(std::string_view sender, std::string_view id, std::string_view why) {
    auto response = error_response(503, why);
    response.set_header("Retry-After", "1");
    send_response(sender, id, 0, response, /*close=*/true);
  }
  static std::string_view conn_id_of(const Frame& f) { return f.conn_id; }
  static std::string_view conn_id_of(const Request& r) { return r.conn_id(); }
  static std::string_view sender_of(const Frame& f) { return f.sender; }
  static std::string_view sender_of(const Request& r) { return r.sender(); }

  void reply(const Request& request, Dispatched& result) {
    // Counted before it leaves: a client that has its reply finds it counted.
    stats_.replies.fetch_add(1, std::memory_order_relaxed);
    send_response(request.sender(), request.conn_id(), request.reply_slot(), result.response,
                  request.should_close(), result.include_body);
  }

  // One response to one connection, then (with `close`) the frame that
  // closes it: the whole reply of `slot`. A small reply is built in a buffer
  // the shard reuses and copied once into ZeroMQ's message: no allocation of
  // our own. One still waiting for an earlier reply is held instead.
  void send_response(std::string_view sender, std::string_view id, std::uint64_t slot,
                     Response& response, bool close, bool include_body = true) {
    if (close) response.set_header("Connection", "close");
    const auto conn = conn_number(id);
    if (!order_.ready(sender, conn, slot)) {
      std::string bytes;
      response.serialize(bytes, include_body);
      send_in_order(sender, id, slot, bytes, !close);
      if (close) send_in_order(sender, id, slot, {}, true);
      return;
    }
    auto ids = std::span<const std::string_view>(&id, 1);
    if (response.body.size() < kZeroCopyMin) {
      reply_buf_.clear();
      append_reply_prefix(reply_buf_, sender, ids);
      response.serialize(reply_buf_, include_body);
      send_copy(reply_buf_);
    } else {
      auto out = std::make_unique<std::string>();
      append_reply_prefix(*out, sender, ids);
      response.serialize(*out, include_body);
      send(std::move(out));
    }
    if (close) close_connection(sender, id);
    order_.finish(sender, id, conn, slot);
  }

  // Part of the reply of `slot`: sent now, or held until the replies before
  // it on the connection are out.
  void send_in_order(std::string_view sender, std::string_view id, std::uint64_t slot,
                     std::string_view bytes, bool last) {
    const auto conn = conn_number(id);
    if (order_.send(sender, id, conn, slot, bytes, last) == detail::ReplyOrder::Outcome::overflow)
      overflowed(sender, id, "reply bytes");
  }

  // Bytes the order lets go: one frame to one connection.
  void send_now(std::string_view sender, std::string_view id, std::string_view bytes) {
    auto ids = std::span<const std::string_view>(&id, 1);
    if (bytes.size() < kZeroCopyMin) {
      reply_buf_.clear();
      append_reply_prefix(reply_buf_, sender, ids);
      reply_buf_.append(bytes);
      send_copy(reply_buf_);
    } else {
      auto out = std::make_unique<std::string>();
      append_reply_prefix(*out, sender, ids);
      out->append(bytes);
      send(std::move(out));
    }
  }

  // Mongrel2 closes a connection on an empty reply.
  void close_connection(std::string_view sender, std::string_view id) {
    reply_buf_.clear();
    append_reply_prefix(reply_buf_, sender, std::span<const std::string_view>(&id, 1));
    send_copy(reply_buf_);
  }

  // ReplyChannel: deferred and streamed replies, in their connection's order.
  void send_reply(std::string_view sender, std::string_view conn_id, std::uint64_t slot,
                  std::string_view bytes, bool last) override {
    send_in_order(sender, conn_id, slot, bytes, last);
  }

  // ReplyChannel: delivered replies, to other connections, at once.
  void send(std::string_view sender, std::span<const std::string_view> conn_ids,
            std::string_view bytes) override {
    for (auto& frame : encode_broadcast(sender, conn_ids, bytes))
      send(std::make_unique<std::string>(std::move(frame)));
  }

  // Replies smaller than this are copied into ZeroMQ's message; larger ones
  // are handed over without a copy. Zero-copy costs two more allocations
  // and a free on ZeroMQ's I/O thread: only worth it for big bodies.
  static constexpr std::size_t kZeroCopyMin = 32 * 1024;

  void send(std::unique_ptr<std::string> bytes) {
    if (bytes->size() < kZeroCopyMin) {
      send_copy(*bytes);
      return;
    }
    auto* raw = bytes.get();
    // ZeroMQ frees the string once it is on the wire.
    zmq::message_t msg(
        raw->data(), raw->size(), [](void*, void* hint) { delete static_cast<std::string*>(hint); },
        raw);
    bytes.release();
    publish(msg);
  }

  void send_copy(std::string_view bytes) {
    zmq::message_t msg(bytes.data(), bytes.size());
    publish(msg);
  }

  void publish(zmq::message_t& msg) {
    // Never blocks: at the high-water mark the reply is dropped and counted
    // (the HWM is sized so that this means Mongrel2 stopped reading).
    if (!pub_.send(msg, zmq::send_flags::dontwait)) {
      stats_.dropped_replies.fetch_add(1, std::memory_order_relaxed);
      drop_log_.log(spdlog::level::err,
                    "shard {}: reply dropped: the PUB socket is at its high-water mark",
                    options_.index);
    }
  }

  void start_drain(std::int64_t grace_ms) {
    if (draining_) return;
    draining_ = true;
    // Stop pulling (Mongrel2 then sends new requests to other processes);
    // frames already queued are still read by the poll hook.
    pulls_->disconnect();
    auto deadline = Clock::now() + std::chrono::milliseconds(grace_ms);
    hub_->spawn([this, deadline] {
      if (!pulls_->empty()) hub_->sleep_for(std::chrono::milliseconds(10));
      while (hub_->live() > 1 && Clock::now() < deadline)
        hub_->sleep_for(std::chrono::milliseconds(5));
      if (hub_->live() > 1) {
        spdlog::warn("shard {}: {} requests still running after the grace period", options_.index,
                     hub_->live() - 1);
        // Their clients would otherwise wait for a reply that never comes.
        answer_in_flight("the server is stopping; retry");
      }
      reactor_.stop();
    });
  }

  const ShardOptions& options_;
  ShardStats& stats_;
  ShardLiveness& liveness_;
  RequestObserver observer_;
  Clock::time_point accepted_at_{};  // of the frame accept() is taking (when observing)
  std::unique_ptr<FiberHub> hub_;
  Reactor reactor_;
  FrameDecoder decoder_;
  RouteTable routes_;
  zmq::socket_t pub_;
  std::shared_ptr<detail::PullSockets> pulls_;
  std::string reply_buf_;  // reused for every small reply
  // HTTP/1.1 order of replies on each connection, and the fibers serving it.
  detail::ReplyOrder order_{[this](std::string_view sender, std::string_view id,
                                   std::string_view bytes) { send_now(sender, id, bytes); },
                            detail::ReplyOrder::Limits{}};
  std::unique_ptr<detail::LoopActorBinding> binding_;
  bool draining_ = false;
  detail::LogLimiter malformed_log_;
  detail::LogLimiter overload_log_;
  detail::LogLimiter reject_log_;
  detail::LogLimiter stall_log_;
  detail::LogLimiter drop_log_;
};

}  // namespace

void Shard::start() {
  detail::start_loop_thread(
      thread_,
      [this] {
        if (options_.pin) pin_to_core(options_.index);
        auto loop = std::make_unique<ShardLoop>(system_, zmq_, options_, std::move(routes_), stats_,
                                                liveness_, metrics_.get());
        handle_ = std::make_unique<caf::actor>(loop->handle());
        return loop;
      },
      [this](ShardLoop& loop) {
        try {
          loop.run();
        } catch (const std::exception& e) {
          spdlog::critical("shard {}: event loop failed: {}", options_.index, e.what());
          loop.fail();
        }
        if (loop.died()) {
          try {
            loop.answer_in_flight();
          } catch (const std::exception& e) {
            spdlog::error("shard {}: could not answer in-flight requests: {}", options_.index,
                          e.what());
          }
        }
        liveness_.ended.store(true);
        spdlog::debug("shard {}: stopped", options_.index);
      });
}

}  // namespace brubeck

#include "brubeck/drivers/http_client.hpp"

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <strings.h>
#include <sys/epoll.h>

#include <algorithm>
#include <stdexcept>
#include <system_error>
#include <unordered_map>

#include "brubeck/pipeline/reactor.hpp"

namespace brubeck {

std::string HttpClientResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (key.size() == name.size() && ::strncasecmp(key.data(), name.data(), name.size()) == 0)
      return value;
  return {};
}

namespace detail {

namespace {

void global_init() {
  // Once per process and before any other thread uses curl: curl_easy_init
  // would do it lazily, but not thread-safely on every libcurl build.
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) throw std::runtime_error("curl_global_init failed");
}

// What one request fiber owns while its transfer runs; curl reaches it
// through CURLOPT_PRIVATE.
struct Transfer {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  HttpClientResponse response;
  std::size_t max_body_bytes = 0;
  bool too_large = false;
  bool done = false;
  CURLcode result = CURLE_OK;
  WaitToken token{};
  char error[CURL_ERROR_SIZE] = {};

  Transfer() : easy(curl_easy_init()) {
    if (easy == nullptr) throw std::runtime_error("curl_easy_init failed");
  }
  ~Transfer() {
    curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
  }
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) noexcept {
  auto* t = static_cast<Transfer*>(user);
  std::size_t bytes = size * n;
  if (t->response.body.size() + bytes > t->max_body_bytes) {
    t->too_large = true;
    return 0;  // curl fails the transfer with CURLE_WRITE_ERROR
  }
  try {
    t->response.body.append(data, bytes);
  } catch (...) {
    return 0;
  }
  return bytes;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) noexcept {
  auto* t = static_cast<Transfer*>(user);
  std::size_t bytes = size * n;
  std::string_view line(data, bytes);
  try {
    // A new status line starts a new header block (100 Continue, a redirect):
    // only the last block describes the response returned.
    if (line.starts_with("HTTP/")) {
      t->response.headers.clear();
    } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
      t->response.headers.emplace_back(std::string(trim(line.substr(0, colon))),
                                       std::string(trim(line.substr(colon + 1))));
    }
  } catch (...) {
    return 0;
  }
  return bytes;
}

}  // namespace

struct HttpCore : std::enable_shared_from_this<HttpCore> {
  CURLM* multi = nullptr;
  Reactor* reactor;
  FiberHub* hub;
  // Identifies the reactor beyond its address: a later reactor may be built
  // at the same address, and this one's epoll must not be touched once gone.
  std::weak_ptr<ReactorAnchor> anchor;
  std::unordered_map<int, std::uint32_t> sockets;  // registered with the reactor
  std::size_t active = 0;                          // transfers in the multi handle
  // curl's single timer; the timer fiber exists only while transfers run, so
  // an idle client keeps no fiber alive (a draining shard counts them).
  std::optional<Clock::time_point> timer_due;
  bool timer_fiber = false;
  WaitToken timer_token{};
  bool closing = false;

  explicit HttpCore(Reactor& r) : reactor(&r), hub(r.hub()), anchor(r.anchor()) {
    global_init();
    multi = curl_multi_init();
    if (multi == nullptr) throw std::runtime_error("curl_multi_init failed");
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &HttpCore::on_socket_change);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &HttpCore::on_timer_change);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
  }

  ~HttpCore() {
    closing = true;
    // Closes the cached connections; their removals reach the reactor only
    // if it is still the one running here.
    curl_multi_cleanup(multi);
  }

  // Whether our reactor is alive and running on this thread, so that its fd
  // table and its hub may be used. False while a hub unwinds its fibers after
  // the loop ended, and for a client outliving its reactor.
  bool on_loop() const noexcept {
    auto* r = Reactor::current();
    if (r != reactor) return false;
    auto a = anchor.lock();
    return a != nullptr && a == r->anchor();
  }

  static int on_socket_change(CURL*, curl_socket_t fd, int what, void* user, void*) noexcept {
    auto* self = static_cast<HttpCore*>(user);
    try {
      self->update_socket(fd, what);
      return 0;
    } catch (const std::exception& e) {
      spdlog::error("http client: socket {} registration failed: {}", fd, e.what());
    } catch (...) {
    }
    return -1;
  }

  void update_socket(int fd, int what) {
    bool live = on_loop();
    auto it = sockets.find(fd);
    if (what == CURL_POLL_REMOVE) {
      if (it == sockets.end()) return;
      sockets.erase(it);
      if (live) reactor->remove_fd(fd);
      return;
    }
    std::uint32_t events =
        ((what & CURL_POLL_IN) != 0 ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) != 0 ? EPOLLOUT : 0u);
    if (!live) return;
    if (it != sockets.end()) {
      if (it->second == events) return;
      try {
        reactor->modify_fd(fd, events);
        it->second = events;
        return;
      } catch (const std::system_error&) {
        // curl closed and reopened this fd number without telling us, and
        // epoll forgot the old one: register it afresh.
        reactor->remove_fd(fd);
        sockets.erase(it);
      }
    }
    reactor->add_fd(fd, events, [this, fd](std::uint32_t ev) { on_ready(fd, ev); });
    sockets[fd] = events;
  }

  static int on_timer_change(CURLM*, long timeout_ms, void* user) noexcept {
    auto* self = static_cast<HttpCore*>(user);
    // curl_multi_socket_action must not be called from here (no recursion
    // into curl): the timer fiber does it.
    if (timeout_ms < 0)
      self->timer_due.reset();
    else
      self->timer_due = Clock::now() + std::chrono::milliseconds(timeout_ms);
    try {
      self->kick_timer();
    } catch (const std::exception& e) {
      spdlog::error("http client: timer fiber failed to start: {}", e.what());
      return -1;
    } catch (...) {
      return -1;
    }
    return 0;
  }

  // Starts the timer fiber, or wakes it to re-read timer_due or to end.
  void kick_timer() {
    if (!on_loop()) return;
    if (timer_fiber) {
      hub->wake(timer_token);
      return;
    }
    if (closing || active == 0 || !timer_due) return;
    timer_fiber = true;
    timer_token = {};
    try {
      hub->spawn([core = shared_from_this()] { core->run_timer(); });
    } catch (...) {
      timer_fiber = false;
      throw;
    }
  }

  void run_timer() {
    struct Ended {
      HttpCore* core;
      ~Ended() {
        core->timer_fiber = false;
        core->timer_token = {};
      }
    } ended{this};
    try {
      while (!closing && active > 0) {
        if (timer_due && *timer_due <= Clock::now()) {
          timer_due.reset();
          int running = 0;
          curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
          finish_done();
          continue;
        }
        timer_token = hub->prepare_wait();
        hub->suspend(timer_token, timer_due);
      }
    } catch (const std::exception& e) {
      spdlog::error("http client: timer fiber ended: {}", e.what());
    }
  }

  void on_ready(int fd, std::uint32_t events) noexcept {
    int flags = ((events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) != 0 ? CURL_CSELECT_IN : 0) |
                ((events & EPOLLOUT) != 0 ? CURL_CSELECT_OUT : 0) |
                ((events & EPOLLERR) != 0 ? CURL_CSELECT_ERR : 0);
    int running = 0;
    curl_multi_socket_action(multi, fd, flags, &running);
    finish_done();
  }

  // Hands finished transfers' results to their fibers.
  void finish_done() noexcept {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      char* priv = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
      auto* t = reinterpret_cast<Transfer*>(priv);
      if (t == nullptr) continue;
      t->done = true;
      t->result = msg->data.result;
      hub->wake(t->token);
    }
  }
};

namespace {

// Keeps an easy handle in the multi handle exactly as long as its fiber
// waits on it, whichever way that wait ends (result, timeout, cancellation,
// a hub unwinding the fiber).
struct Attached {
  std::shared_ptr<HttpCore> core;
  Transfer& t;
  Attached(std::shared_ptr<HttpCore> c, Transfer& transfer) : core(std::move(c)), t(transfer) {
    if (auto rc = curl_multi_add_handle(core->multi, t.easy); rc != CURLM_OK)
      throw std::runtime_error(std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc));
    ++core->active;
  }
  ~Attached() {
    curl_multi_remove_handle(core->multi, t.easy);
    --core->active;
    if (core->active == 0 && core->timer_fiber && core->on_loop())
      core->hub->wake(core->timer_token);
  }
  Attached(const Attached&) = delete;
  Attached& operator=(const Attached&) = delete;
};

template <class T>
void set(CURL* easy, CURLoption option, T value) {
  if (auto rc = curl_easy_setopt(easy, option, value); rc != CURLE_OK)
    throw std::runtime_error(std::string("curl_easy_setopt: ") + curl_easy_strerror(rc));
}

bool is_unavailable(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return true;
    default:
      return false;
  }
}

}  // namespace

}  // namespace detail

HttpClient::HttpClient(Reactor& reactor) : core_(std::make_shared<detail::HttpCore>(reactor)) {}

HttpClient::~HttpClient() {
  core_->closing = true;
  // An idle timer fiber ends at once; one mid-wait ends when it next wakes.
  if (core_->timer_fiber && core_->on_loop()) core_->hub->wake(core_->timer_token);
}

HttpClient& HttpClient::for_this_shard() {
  auto* reactor = Reactor::current();
  if (reactor == nullptr || reactor->hub() == nullptr)
    throw std::logic_error("brubeck::HttpClient used outside a fiber of a running reactor");
  // One client per reactor this thread has run; clients of reactors that are
  // gone are dropped here (their reactor's epoll is never touched again).
  thread_local std::vector<std::unique_ptr<HttpClient>> clients;
  std::erase_if(clients, [](const auto& c) { return c->core_->anchor.expired(); });
  for (auto& c : clients)
    if (c->core_->on_loop()) return *c;
  clients.push_back(std::unique_ptr<HttpClient>(new HttpClient(*reactor)));
  return *clients.back();
}

HttpClientResponse HttpClient::request(const HttpClientRequest& req, Deadline deadline) {
  auto* hub = FiberHub::current();
  if (hub == nullptr || hub != core_->hub || !core_->on_loop())
    throw std::logic_error("brubeck::HttpClient used outside a fiber of its own reactor");

  detail::Transfer t;
  t.max_body_bytes = req.max_body_bytes;
  CURL* e = t.easy;
  using detail::set;
  set(e, CURLOPT_URL, req.url.c_str());
  set(e, CURLOPT_NOSIGNAL, 1L);
  set(e, CURLOPT_PRIVATE, static_cast<void*>(&t));
  set(e, CURLOPT_ERRORBUFFER, t.error);
  set(e, CURLOPT_WRITEFUNCTION, &detail::on_body);
  set(e, CURLOPT_WRITEDATA, static_cast<void*>(&t));
  set(e, CURLOPT_HEADERFUNCTION, &detail::on_header);
  set(e, CURLOPT_HEADERDATA, static_cast<void*>(&t));

  if (req.method == "GET" && req.body.empty()) {
    set(e, CURLOPT_HTTPGET, 1L);
  } else if (req.method == "HEAD") {
    set(e, CURLOPT_NOBODY, 1L);
  } else {
    if (!req.body.empty() || req.method == "POST") {
      // Not copied: `req` outlives the transfer.
      set(e, CURLOPT_POSTFIELDS, req.body.data());
      set(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    }
    if (req.method != "POST") set(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  for (const auto& [name, value] : req.headers) {
    std::string line = value.empty() ? name + ";" : name + ": " + value;
    auto* list = curl_slist_append(t.headers, line.c_str());
    if (list == nullptr) throw std::bad_alloc();
    t.headers = list;
  }
  // Without this curl holds a large body back for a second, waiting for a
  // "100 Continue" that many servers never send.
  if (!req.body.empty()) {
    auto* list = curl_slist_append(t.headers, "Expect:");
    if (list == nullptr) throw std::bad_alloc();
    t.headers = list;
  }
  if (t.headers != nullptr) set(e, CURLOPT_HTTPHEADER, t.headers);

  // The tighter of the call's and the fiber's deadlines also bounds curl, so
  // a timed-out connection is closed by curl as well.
  auto fiber_deadline = hub->deadline();
  bool fiber_deadline_first =
      fiber_deadline != Clock::time_point::max() && (!deadline || fiber_deadline <= *deadline);
  auto limit = fiber_deadline_first ? std::optional(fiber_deadline) : deadline;
  if (limit) {
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(*limit - Clock::now()).count();
    if (ms <= 0) {
      if (fiber_deadline_first) throw DeadlineExceeded{};
      throw Timeout("HTTP request timed out: " + req.url);
    }
    set(e, CURLOPT_TIMEOUT_MS, static_cast<long>(ms));
  }

  {
    detail::Attached attached(core_, t);
    core_->kick_timer();
    while (!t.done) {
      t.token = hub->prepare_wait();
      // Throws DeadlineExceeded at the fiber's deadline; `attached` then
      // takes the handle out of the multi handle.
      if (!hub->suspend(t.token, deadline) && !t.done)
        throw Timeout("HTTP request timed out: " + req.url);
    }
    t.token = {};
  }

  if (t.result != CURLE_OK) {
    std::string detail = t.error[0] != '\0' ? t.error : curl_easy_strerror(t.result);
    if (t.too_large)
      throw std::runtime_error("HTTP response body over " + std::to_string(req.max_body_bytes) +
                               " bytes: " + req.url);
    if (detail::is_unavailable(t.result))
      throw Unavailable("HTTP server unavailable: " + req.url + ": " + detail);
    if (t.result == CURLE_OPERATION_TIMEDOUT) {
      if (fiber_deadline_first) throw DeadlineExceeded{};
      throw Timeout("HTTP request timed out: " + req.url + ": " + detail);
    }
    throw std::runtime_error("HTTP request failed: " + req.url + ": " + detail);
  }
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  t.response.status = status;
  return std::move(t.response);
}

HttpClientResponse HttpClient::get(const std::string& url, Deadline deadline) {
  HttpClientRequest req;
  req.url = url;
  return request(req, deadline);
}

HttpClientResponse HttpClient::post(const std::string& url, std::string body,
                                    std::string content_type, Deadline deadline) {
  HttpClientRequest req;
  req.method = "POST";
  req.url = url;
  req.body = std::move(body);
  req.headers.emplace_back("Content-Type", std::move(content_type));
  return request(req, deadline);
}

}  // namespace brubeck

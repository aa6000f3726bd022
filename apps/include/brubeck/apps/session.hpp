// Server-side sessions: what a browser's visits have in common (who logged
// in, a cart, a flash message) kept on the server under a random id, and
// only that id in a signed cookie. A SessionStore keeps the data with an
// expiry; three stores share one interface and one test suite:
//
//   MemorySessionStore   one process, every shard at once (a striped lock)
//   SqliteSessionStore   the embedded default: survives a restart, no server
//   RedisSessionStore    several processes and hosts share one Redis
//
// A store is keyed by a hash of the session id, never the id itself, so a
// leaked store (a backup, a Redis dump) hands out no live session.
//
// `use_sessions(app)` builds the store the configuration names (settings
// session_store, session_sqlite, session_redis, session_ttl_s, login_url)
// and provides it; a PageHandler or ApiHandler then reads and changes
// `session()`, which is loaded on first use and saved (its cookie set) only
// when it changed, before the reply is built. A tampered, unknown or expired
// cookie reads as a fresh, empty session.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace brubeck {

class App;
class SqliteDatabase;
class WebMessageHandler;

// Where sessions live. load/save/destroy are called from a request's fiber
// (the SQLite and Redis stores wait there) by every shard at once.
class SessionStore {
 public:
  using Ttl = std::chrono::milliseconds;
  virtual ~SessionStore();
  // The data saved under `key`, or nullopt when unknown or expired.
  virtual std::optional<nlohmann::json> load(const std::string& key) = 0;
  // Replaces what `key` holds; it expires `ttl` from now.
  virtual void save(const std::string& key, const nlohmann::json& data, Ttl ttl) = 0;
  virtual void destroy(const std::string& key) = 0;
};

class MemorySessionStore : public SessionStore {
 public:
  std::optional<nlohmann::json> load(const std::string& key) override;
  void save(const std::string& key, const nlohmann::json& data, Ttl ttl) override;
  void destroy(const std::string& key) override;
  // Sessions held, expired ones not yet swept included.
  std::size_t size() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    nlohmann::json data;
    Clock::time_point expires;
  };
  // Shards touching different sessions rarely share a lock.
  struct Stripe {
    mutable std::mutex mutex;
    std::unordered_map<std::string, Entry> entries;
    std::size_t saves = 0;  // every 256th save sweeps the stripe's expired entries
  };
  Stripe& stripe(const std::string& key);
  std::array<Stripe, 16> stripes_;
};

class SqliteSessionStore : public SessionStore {
 public:
  // Any thread, at start-up: opens (creating) the file and its table.
  explicit SqliteSessionStore(const std::string& path);
  std::optional<nlohmann::json> load(const std::string& key) override;
  void save(const std::string& key, const nlohmann::json& data, Ttl ttl) override;
  void destroy(const std::string& key) override;

 private:
  std::shared_ptr<SqliteDatabase> db_;
  std::atomic<std::uint64_t> saves_{0};  // every 256th save deletes expired rows
};

class RedisSessionStore : public SessionStore {
 public:
  // Each shard talks to host:port on its own connection
  // (RedisClient::for_this_shard); Redis expires the keys itself.
  RedisSessionStore(std::string host, std::uint16_t port, std::string prefix = "brubeck:session:");
  std::optional<nlohmann::json> load(const std::string& key) override;
  void save(const std::string& key, const nlohmann::json& data, Ttl ttl) override;
  void destroy(const std::string& key) override;

 private:
  std::string host_;
  std::uint16_t port_;
  std::string prefix_;
};

// The service handlers find: the store and how session cookies are made.
struct Sessions {
  std::shared_ptr<SessionStore> store;
  // A session unchanged this long expires (each change starts it again).
  std::chrono::seconds ttl{std::chrono::hours(24 * 14)};
  std::string cookie_name = "session";
  // Set on the cookie: only over HTTPS when true.
  bool secure_cookie = false;
  // Where a page needing a user sends the browser (with ?next=).
  std::string login_url = "/login";
};

// Builds the store the app's configuration names and provides it
// (App::provide<Sessions>). Needs a cookie_secret (std::logic_error
// otherwise); throws what opening the store throws (a bad SQLite path, a bad
// session_redis address).
std::shared_ptr<Sessions> use_sessions(App& app);

// One request's session, made by session() of a PageHandler or ApiHandler. Its data
// is a JSON object; read and change it through data() (or the shortcuts).
class Session {
 public:
  Session(WebMessageHandler& handler, const Sessions& sessions);

  nlohmann::json& data() { return data_; }
  const nlohmann::json& data() const { return data_; }
  nlohmann::json& operator[](const std::string& key) { return data_[key]; }
  bool contains(const std::string& key) const { return data_.contains(key); }
  // The value of `key`, or `fallback` when absent.
  nlohmann::json get(const std::string& key, nlohmann::json fallback = nullptr) const;
  void erase(const std::string& key) { data_.erase(key); }

  // True while the store holds nothing for it (no valid cookie came in).
  bool is_new() const noexcept { return !stored_; }

  // A new id for the same data, the old one destroyed: call it when the
  // user's privileges change (login), so an id planted in the browser
  // before (session fixation) is worth nothing after.
  void regenerate();
  // Forgets the session: its data, its stored copy and its cookie (logout).
  void destroy();

  // Saves the session and sets its cookie if it changed (PageHandler and
  // ApiHandler call it before building the reply; a handler that streams
  // or defers its reply calls it itself first). Safe to call more than once.
  void commit();

 private:
  WebMessageHandler& handler_;
  const Sessions& sessions_;
  std::string id_;                       // empty: none yet
  bool stored_ = false;                  // the store holds id_
  bool fresh_id_ = false;                // id_ is new: save it, set its cookie
  bool destroyed_ = false;               // delete the cookie unless saved anew
  std::vector<std::string> stale_keys_;  // to destroy at commit
  nlohmann::json data_;                  // what the handler sees
  nlohmann::json saved_;                 // what the store holds
};

// A new random session id: 256 bits from libsodium's randombytes, as
// base64url text (cookie-safe).
std::string new_session_id();
// What a store keys a session by: a hash of its id (BLAKE2b, hex).
std::string session_store_key(std::string_view id);

}  // namespace brubeck

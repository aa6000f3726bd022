#include "brubeck/apps/session.hpp"

#include <sodium.h>

#include <charconv>
#include <functional>
#include <stdexcept>

#include "brubeck/actors/app.hpp"
#include "brubeck/drivers/redis.hpp"
#include "brubeck/drivers/sqlite.hpp"
#include "brubeck/handlers/handler.hpp"

namespace brubeck {

namespace {

void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) throw std::runtime_error("libsodium: sodium_init() failed");
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Session data as stored: JSON text, with invalid UTF-8 replaced rather
// than refused (a value copied from a request may hold any bytes).
std::string to_text(const nlohmann::json& data) {
  return data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Stored text back to data; anything but an object (a corrupted row, a key
// another program wrote) is no session.
std::optional<nlohmann::json> from_text(std::string_view text) {
  auto data = nlohmann::json::parse(text, nullptr, false);
  if (data.is_discarded() || !data.is_object()) return std::nullopt;
  return data;
}

}  // namespace

SessionStore::~SessionStore() = default;

// ---- MemorySessionStore ----

MemorySessionStore::Stripe& MemorySessionStore::stripe(const std::string& key) {
  return stripes_[std::hash<std::string>{}(key) % stripes_.size()];
}

std::optional<nlohmann::json> MemorySessionStore::load(const std::string& key) {
  auto& s = stripe(key);
  std::lock_guard lock(s.mutex);
  auto it = s.entries.find(key);
  if (it == s.entries.end()) return std::nullopt;
  if (it->second.expires <= Clock::now()) {
    s.entries.erase(it);
    return std::nullopt;
  }
  return it->second.data;
}

void MemorySessionStore::save(const std::string& key, const nlohmann::json& data, Ttl ttl) {
  auto& s = stripe(key);
  const auto now = Clock::now();
  std::lock_guard lock(s.mutex);
  s.entries[key] = Entry{data, now + ttl};
  // Sessions nobody comes back for would otherwise stay forever.
  if (++s.saves % 256 == 0)
    std::erase_if(s.entries, [now](const auto& kv) { return kv.second.expires <= now; });
}

void MemorySessionStore::destroy(const std::string& key) {
  auto& s = stripe(key);
  std::lock_guard lock(s.mutex);
  s.entries.erase(key);
}

std::size_t MemorySessionStore::size() const {
  std::size_t n = 0;
  for (const auto& s : stripes_) {
    std::lock_guard lock(s.mutex);
    n += s.entries.size();
  }
  return n;
}

// ---- SqliteSessionStore ----

namespace {
constexpr const char* kSessionTable =
    "CREATE TABLE IF NOT EXISTS brubeck_sessions (key TEXT PRIMARY KEY, data TEXT NOT NULL, "
    "expires INTEGER NOT NULL)";
}

SqliteSessionStore::SqliteSessionStore(const std::string& path)
    : db_(SqliteDatabase::open(path, kSessionTable)) {}

std::optional<nlohmann::json> SqliteSessionStore::load(const std::string& key) {
  auto r = db_->query("SELECT data FROM brubeck_sessions WHERE key = ? AND expires > ?",
                      {key, unix_ms_now()});
  if (r.rows.empty()) return std::nullopt;
  return from_text(r.text(0, 0));
}

void SqliteSessionStore::save(const std::string& key, const nlohmann::json& data, Ttl ttl) {
  const auto now = unix_ms_now();
  db_->query("INSERT OR REPLACE INTO brubeck_sessions (key, data, expires) VALUES (?, ?, ?)",
             {key, to_text(data), now + static_cast<std::int64_t>(ttl.count())});
  if (saves_.fetch_add(1, std::memory_order_relaxed) % 256 == 255)
    db_->query("DELETE FROM brubeck_sessions WHERE expires <= ?", {now});
}

void SqliteSessionStore::destroy(const std::string& key) {
  db_->query("DELETE FROM brubeck_sessions WHERE key = ?", {key});
}

// ---- RedisSessionStore ----

RedisSessionStore::RedisSessionStore(std::string host, std::uint16_t port, std::string prefix)
    : host_(std::move(host)), port_(port), prefix_(std::move(prefix)) {}

std::optional<nlohmann::json> RedisSessionStore::load(const std::string& key) {
  auto text = RedisClient::for_this_shard(host_, port_)->get(prefix_ + key);
  if (!text) return std::nullopt;
  return from_text(*text);
}

void RedisSessionStore::save(const std::string& key, const nlohmann::json& data, Ttl ttl) {
  RedisClient::for_this_shard(host_, port_)
      ->command({"SET", prefix_ + key, to_text(data), "PX",
                 std::to_string(std::max<std::int64_t>(1, ttl.count()))});
}

void RedisSessionStore::destroy(const std::string& key) {
  RedisClient::for_this_shard(host_, port_)->command({"DEL", prefix_ + key});
}

// ---- ids ----

std::string new_session_id() {
  ensure_sodium();
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  char text[sodium_base64_ENCODED_LEN(sizeof bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(text, sizeof text, bytes, sizeof bytes,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return text;
}

std::string session_store_key(std::string_view id) {
  ensure_sodium();
  unsigned char hash[32];
  crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(id.data()),
                     id.size(), nullptr, 0);
  char hex[sizeof hash * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
  return hex;
}

// ---- Session ----

Session::Session(WebMessageHandler& handler, const Sessions& sessions)
    : handler_(handler), sessions_(sessions), data_(nlohmann::json::object()) {
  saved_ = data_;
  auto id = handler_.get_secure_cookie(sessions_.cookie_name, sessions_.ttl);
  // A signed cookie holds what we signed, but a secret shared with another
  // app could have signed anything: only an id of ours is looked up.
  if (!id || id->size() != 43) return;
  if (auto stored = sessions_.store->load(session_store_key(*id))) {
    id_ = std::move(*id);
    stored_ = true;
    data_ = std::move(*stored);
    saved_ = data_;
  }
}

nlohmann::json Session::get(const std::string& key, nlohmann::json fallback) const {
  auto it = data_.find(key);
  return it == data_.end() ? std::move(fallback) : *it;
}

void Session::regenerate() {
  if (stored_) stale_keys_.push_back(session_store_key(id_));
  id_ = new_session_id();
  stored_ = false;
  fresh_id_ = true;
}

void Session::destroy() {
  if (stored_) stale_keys_.push_back(session_store_key(id_));
  id_.clear();
  stored_ = false;
  fresh_id_ = false;
  destroyed_ = true;
  data_ = nlohmann::json::object();
  saved_ = data_;
}

void Session::commit() {
  auto& store = *sessions_.store;
  for (const auto& key : stale_keys_) store.destroy(key);
  stale_keys_.clear();
  // A handler may have replaced the object with something else.
  if (!data_.is_object()) data_ = nlohmann::json::object();
  const bool changed = data_ != saved_;
  if (changed || fresh_id_) {
    if (id_.empty()) id_ = new_session_id();
    store.save(session_store_key(id_), data_,
               std::chrono::duration_cast<SessionStore::Ttl>(sessions_.ttl));
    saved_ = data_;
    stored_ = true;
    fresh_id_ = false;
    destroyed_ = false;
    CookieOptions options;
    options.max_age = sessions_.ttl;
    options.http_only = true;  // no script needs it: XSS cannot read it
    options.same_site = "Lax";
    options.secure = sessions_.secure_cookie;
    handler_.set_secure_cookie(sessions_.cookie_name, id_, options);
  } else if (destroyed_) {
    destroyed_ = false;
    if (handler_.get_cookie(sessions_.cookie_name)) handler_.delete_cookie(sessions_.cookie_name);
  }
}

// ---- set-up ----

std::shared_ptr<Sessions> use_sessions(App& app) {
  const auto& config = app.config();
  if (config.cookie_secrets.empty())
    throw std::logic_error("sessions need a cookie_secret in the configuration");
  auto sessions = std::make_shared<Sessions>();
  const auto& kind = config.session_store;
  if (kind == "memory") {
    sessions->store = std::make_shared<MemorySessionStore>();
  } else if (kind == "sqlite") {
    sessions->store = std::make_shared<SqliteSessionStore>(config.session_sqlite);
  } else if (kind == "redis") {
    const auto& address = config.session_redis;
    auto colon = address.rfind(':');
    unsigned port = 0;
    const char* end = address.data() + address.size();
    if (colon == std::string::npos || colon == 0 ||
        std::from_chars(address.data() + colon + 1, end, port).ptr != end || port == 0 ||
        port > 65535)
      throw std::invalid_argument("session_redis: expected host:port, got '" + address + "'");
    sessions->store = std::make_shared<RedisSessionStore>(address.substr(0, colon),
                                                          static_cast<std::uint16_t>(port));
  } else {
    throw std::invalid_argument("session_store: unknown store '" + kind + "'");
  }
  sessions->ttl = std::chrono::seconds(config.session_ttl_s);
  sessions->secure_cookie = config.session_secure_cookie;
  sessions->login_url = config.login_url;
  app.provide(sessions);
  return sessions;
}

}  // namespace brubeck

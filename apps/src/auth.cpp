#include "brubeck/apps/auth.hpp"

#include <sodium.h>

#include <stdexcept>

#include "brubeck/actors/app.hpp"
#include "brubeck/drivers/sqlite.hpp"
#include "brubeck/pipeline/offload.hpp"

namespace brubeck {

namespace {

void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) throw std::runtime_error("libsodium: sodium_init() failed");
}

// Longer inputs only cost hashing time (an attacker's, spent on our CPUs).
constexpr std::size_t kMaxName = 100;
constexpr std::size_t kMaxPassword = 1024;

void check_credentials(const std::string& name, const std::string& password) {
  if (name.empty() || name.size() > kMaxName)
    throw std::invalid_argument("user name: 1 to 100 bytes");
  if (password.empty() || password.size() > kMaxPassword)
    throw std::invalid_argument("password: 1 to 1024 bytes");
}

// The password travels to the pool by value (the job may outlive its
// waiting fiber) and is wiped there once used.
struct Secret {
  std::string text;
  explicit Secret(const std::string& t) : text(t) {}
  Secret(const Secret&) = delete;
  ~Secret() { sodium_memzero(text.data(), text.size()); }
};

// The hash itself, on the calling thread.
std::string hash_here(std::string_view password) {
  ensure_sodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    throw std::runtime_error("crypto_pwhash_str: out of memory");
  return std::string(out);
}
// Verifies against this when the name is unknown, so both cost the same.
const std::string& dummy_hash() {
  static const std::string hash = hash_here("no such user");
  return hash;
}

}  // namespace

std::string hash_password(const std::string& password) {
  auto secret = std::make_shared<Secret>(password);
  return offload([secret] { return hash_here(secret->text); });
}

bool verify_password(const std::string& hash, const std::string& password) {
  ensure_sodium();
  auto secret = std::make_shared<Secret>(password);
  return offload([secret, hash] {
    const std::string& h = hash.empty() ? dummy_hash() : hash;
    return crypto_pwhash_str_verify(h.c_str(), secret->text.data(), secret->text.size()) == 0 &&
           !hash.empty();
  });
}

// ---- LoginThrottle ----

LoginThrottle::Count& LoginThrottle::count(const std::string& key, Clock::time_point now) {
  if (counts_.size() >= limits_.max_tracked && !counts_.contains(key)) {
    std::erase_if(counts_, [&](const auto& kv) { return now - kv.second.since >= limits_.window; });
    // Still full: a flood of distinct addresses or names. Forgetting them
    // all is the memory bound's price; the per-pair limits start again.
    if (counts_.size() >= limits_.max_tracked) counts_.clear();
  }
  auto& c = counts_[key];
  if (c.failures == 0 || now - c.since >= limits_.window) c = Count{0, now};
  return c;
}

unsigned LoginThrottle::current(const std::string& key, Clock::time_point now) const {
  auto it = counts_.find(key);
  if (it == counts_.end() || now - it->second.since >= limits_.window) return 0;
  return it->second.failures;
}

namespace {
// Keys of the three counters; '\n' cannot occur in an address or a name
// that reaches here as a form value (control characters are refused).
std::string client_key(std::string_view client) { return "c\n" + std::string(client); }
std::string account_key(std::string_view account) { return "a\n" + std::string(account); }
std::string pair_key(std::string_view client, std::string_view account) {
  return "p\n" + std::string(client) + "\n" + std::string(account);
}
}  // namespace

LoginThrottle::Verdict LoginThrottle::attempt(std::string_view client, std::string_view account,
                                              Clock::time_point now) {
  std::lock_guard lock(mutex_);
  Verdict v;
  auto refuse = [&](const std::string& key) {
    const auto& c = counts_.at(key);
    v.allowed = false;
    v.retry_after = std::chrono::ceil<std::chrono::seconds>(c.since + limits_.window - now);
    if (v.retry_after.count() < 1) v.retry_after = std::chrono::seconds(1);
    return v;
  };
  const auto by_client = client_key(client), by_pair = pair_key(client, account),
             by_account = account_key(account);
  if (current(by_client, now) >= limits_.per_client) return refuse(by_client);
  if (current(by_pair, now) >= limits_.per_pair) return refuse(by_pair);
  if (current(by_account, now) >= limits_.per_account) v.delay = limits_.account_delay;
  ++count(by_client, now).failures;
  ++count(by_pair, now).failures;
  ++count(by_account, now).failures;
  return v;
}

void LoginThrottle::uncount(const std::string& key) {
  auto it = counts_.find(key);
  if (it != counts_.end() && it->second.failures > 0) --it->second.failures;
}

void LoginThrottle::succeeded(std::string_view client, std::string_view account) {
  std::lock_guard lock(mutex_);
  counts_.erase(pair_key(client, account));
  uncount(client_key(client));
  uncount(account_key(account));
}

// ---- Users ----

namespace {
// The table, then the initial accounts (the script takes no parameters:
// names are quoted, hashes hold no quote).
std::string users_script(const Users::Credentials& initial) {
  std::string script =
      "CREATE TABLE IF NOT EXISTS brubeck_users (id INTEGER PRIMARY KEY, "
      "name TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL);";
  for (const auto& [name, password] : initial) {
    check_credentials(name, password);
    std::string quoted = "'";
    for (char c : name) quoted += c == '\'' ? std::string("''") : std::string(1, c);
    script += "INSERT INTO brubeck_users (name, password_hash) VALUES (" + quoted + "', '" +
              hash_here(password) + "') ON CONFLICT DO NOTHING;";
  }
  return script;
}
}  // namespace

Users::Users(const std::string& sqlite_path, const Credentials& initial)
    : db_(SqliteDatabase::open(sqlite_path, users_script(initial))) {}

User Users::create(const std::string& name, const std::string& password) {
  check_credentials(name, password);
  auto hash = hash_password(password);
  auto r = db_->query(
      "INSERT INTO brubeck_users (name, password_hash) VALUES (?, ?) ON CONFLICT DO NOTHING",
      {name, hash});
  if (r.changes == 0) throw std::invalid_argument("user name already taken: " + name);
  return User{r.last_insert_id, name};
}

User Users::ensure(const std::string& name, const std::string& password) {
  if (auto user = find(name)) return *user;
  return create(name, password);
}

std::optional<User> Users::find(const std::string& name) {
  auto r = db_->query("SELECT id, name FROM brubeck_users WHERE name = ?", {name});
  if (r.rows.empty()) return std::nullopt;
  return User{std::get<std::int64_t>(r.rows[0][0]), r.text(0, 1)};
}

std::optional<User> Users::verify(const std::string& name, const std::string& password) {
  if (name.empty() || name.size() > kMaxName || password.size() > kMaxPassword) return std::nullopt;
  auto r = db_->query("SELECT id, name, password_hash FROM brubeck_users WHERE name = ?", {name});
  std::string hash = r.rows.empty() ? std::string() : r.text(0, 2);
  if (!verify_password(hash, password)) return std::nullopt;
  return User{std::get<std::int64_t>(r.rows[0][0]), r.text(0, 1)};
}

void Users::set_password(const std::string& name, const std::string& password) {
  check_credentials(name, password);
  auto r = db_->query("UPDATE brubeck_users SET password_hash = ? WHERE name = ?",
                      {hash_password(password), name});
  if (r.changes == 0) throw std::invalid_argument("no such user: " + name);
}

std::shared_ptr<Users> use_users(App& app, const Users::Credentials& initial) {
  auto users = std::make_shared<Users>(app.config().users_sqlite, initial);
  app.provide(users);
  return users;
}

}  // namespace brubeck

// Users and logging in. `Users` keeps accounts in SQLite with argon2id
// password hashes (libsodium's crypto_pwhash_str, INTERACTIVE limits:
// tens of milliseconds and 64 MiB by design), hashed and verified on the
// offload pool, never on a shard's thread. `LoginThrottle` limits failed
// logins per client and per (client, account), and slows an account under
// attack from many clients, so that no client can lock another out.
//
// In a handler (PageHandler or ApiHandler): `login(name, password)` checks,
// throttles, regenerates the session and records the user; `current_user()`
// reads it back; `logout()` destroys the session. A handler class or route
// marked as needing a user (`login_required()`, or `LoginRequired<H>` on a
// route) sends a page to the login URL with ?next=, and answers an API 401.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace brubeck {

class App;
class SqliteDatabase;

struct User {
  std::int64_t id = 0;
  std::string name;
  friend bool operator==(const User&, const User&) = default;
};

// Failed-login bookkeeping for one process (shared by every shard: a lock
// held for a map look-up). Within `window` of a client's first recent
// failure:
//  - a client (its address) failing `per_pair` times on one account is
//    refused (429) on that account, and failing `per_client` times on any
//    accounts is refused on all of them: a guesser is stopped, and only
//    itself;
//  - an account failing `per_account` times, from any clients, makes each
//    further attempt on it wait `account_delay` before being checked: a
//    distributed guesser is slowed, while its owner can still log in (a
//    lock-out per account would let anyone lock anyone out).
// A success clears the (client, account) count and takes the attempt back
// from the others.
class LoginThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  struct Limits {
    std::chrono::seconds window{std::chrono::minutes(15)};
    unsigned per_pair = 5;
    unsigned per_client = 20;
    unsigned per_account = 10;
    std::chrono::milliseconds account_delay{1000};
    std::size_t max_tracked = 100000;  // counters kept before the oldest are dropped
  };
  LoginThrottle() : LoginThrottle(Limits{}) {}
  explicit LoginThrottle(Limits limits) : limits_(limits) {}

  struct Verdict {
    bool allowed = true;
    std::chrono::seconds retry_after{0};  // when refused
    std::chrono::milliseconds delay{0};   // when allowed: wait this long first
  };
  // Before checking a password: whether to, and how long to wait first.
  // An allowed attempt counts as failed until succeeded() says otherwise,
  // so attempts sent at once (each hash takes a while) cannot all slip in
  // before the first failure is counted.
  Verdict attempt(std::string_view client, std::string_view account,
                  Clock::time_point now = Clock::now());
  void succeeded(std::string_view client, std::string_view account);
  const Limits& limits() const noexcept { return limits_; }

 private:
  struct Count {
    unsigned failures = 0;
    Clock::time_point since;
  };
  // The count under `key`, restarted when its window has passed.
  Count& count(const std::string& key, Clock::time_point now);
  void uncount(const std::string& key);
  unsigned current(const std::string& key, Clock::time_point now) const;
  Limits limits_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Count> counts_;
};

class Users {
 public:
  using Credentials = std::vector<std::pair<std::string, std::string>>;  // name, password
  // At start-up, on any thread but a shard's (it waits, and hashes the
  // passwords of `initial` here): opens (creating) the SQLite file and its
  // table, and creates the `initial` accounts that do not exist yet.
  explicit Users(const std::string& sqlite_path, const Credentials& initial = {});

  // From a fiber. Creates an account; std::invalid_argument for an empty or
  // over-long name or password, or a name already taken.
  User create(const std::string& name, const std::string& password);
  // From a fiber: creates the account unless it exists (a demo's user).
  User ensure(const std::string& name, const std::string& password);
  // From a fiber: the account when `password` is its password. An unknown
  // name costs the same hash as a known one (its time tells nothing).
  std::optional<User> verify(const std::string& name, const std::string& password);
  std::optional<User> find(const std::string& name);
  void set_password(const std::string& name, const std::string& password);

  LoginThrottle& throttle() noexcept { return throttle_; }

 private:
  std::shared_ptr<SqliteDatabase> db_;
  LoginThrottle throttle_;
};

// argon2id, on the offload pool (from a fiber): a crypto_pwhash_str string.
std::string hash_password(const std::string& password);
bool verify_password(const std::string& hash, const std::string& password);

// Opens the users file of the app's configuration (users_sqlite), with the
// `initial` accounts, and provides it (App::provide<Users>).
std::shared_ptr<Users> use_users(App& app, const Users::Credentials& initial = {});

}  // namespace brubeck

// Brubeck's AutoAPI: declare a model, pick where its records live (a
// Queryset, as Brubeck called its stores), and get a JSON REST API on a
// route. register_api(app, queryset) serves, for a model named "todo":
//
//   GET    /todo/              the records by id, paged: ?offset=0&limit=50
//   POST   /todo/              create one (an object) or several (an array): 201
//   GET    /todo/1,2           one record, or several in the order asked
//   PUT    /todo/1             replace it (missing fields take their default)
//   PATCH  /todo/1             change the fields sent, keep the others
//   DELETE /todo/1,2           remove them all, or none if one is unknown: 204
//   GET    /todo/_schema       the model as a JSON Schema
//   GET    /manifest.json      every registered model's JSON Schema, a list
//
// Ids are integers the server assigns (1, 2, 3...; never reused), several
// joined by ',' as Brubeck's MULTIPLE_ITEM_SEP. Bodies are JSON; errors are
// JSON objects with an "error" text, and for invalid records a "fields"
// object with one message per field (400). An unknown id is 404.
//
// The four querysets behave the same (one test suite drives them all):
// MemoryQueryset (one process, any shard), SqliteQueryset (a file, no
// server), PostgresQueryset and RedisQueryset (shared by several processes).
// Each operation is atomic in its store.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace brubeck {

class App;
class SqliteDatabase;
struct RouteSpec;
class WebMessageHandler;

// A record as JSON: "id" first, then the model's fields in their declared
// order (so replies read like the declaration).
using Record = nlohmann::ordered_json;
using ItemId = std::int64_t;

enum class FieldType { string, integer, number, boolean };

struct FieldOptions {
  // A create or replace without the field is refused (400); it is never null.
  bool required = false;
  // Bounds of an integer or number field, inclusive.
  std::optional<double> min{}, max{};
  // Longest string, in characters (Unicode code points).
  std::optional<std::size_t> max_length{};
  // What a create or replace without the field stores; none (null) means the
  // field is null until set, unless it is required.
  Record default_value{};
};

struct Field {
  std::string name;
  FieldType type;
  FieldOptions options;

  static Field string(std::string name, FieldOptions options = {});
  static Field integer(std::string name, FieldOptions options = {});
  static Field number(std::string name, FieldOptions options = {});
  static Field boolean(std::string name, FieldOptions options = {});
};

// Field name -> what is wrong with it ("required", "must be at most 10").
using FieldErrors = std::map<std::string, std::string>;

// What a record is made of (Brubeck's DictShield document). The name is the
// route ("/todo/") and the default table or key prefix, so it and the field
// names must be identifiers: [a-z_][a-z0-9_]*, and no field is called "id".
class Model {
 public:
  enum class Check {
    create,   // a new record: no "id"; missing fields take their defaults
    replace,  // PUT: the same, with "id" allowed if it matches the URL
    patch,    // PATCH: only the fields sent
  };

  // Throws std::invalid_argument for a bad name, a repeated field or a
  // default that its own field would refuse.
  Model(std::string name, std::vector<Field> fields);

  const std::string& name() const noexcept { return name_; }
  const std::vector<Field>& fields() const noexcept { return fields_; }
  const Field* field(std::string_view name) const noexcept;

  // The fields to store from a client's JSON object (without "id"), or
  // errors: one message per field, names prefixed by `prefix` ("[2].text"
  // for the third record of an array).
  Record check(const nlohmann::ordered_json& body, Check mode, FieldErrors& errors,
               std::optional<ItemId> url_id = std::nullopt, const std::string& prefix = {}) const;

  // The model as a JSON Schema (draft 2020-12).
  nlohmann::ordered_json json_schema() const;

  // A stored field as text and back (Redis and PostgreSQL keep text): "1" and
  // "0" for booleans, shortest round-tripping digits for numbers.
  static std::string to_text(const Field& field, const Record& value);
  static Record from_text(const Field& field, std::string_view text);

 private:
  std::string name_;
  std::vector<Field> fields_;
};

// One page of a listing.
struct Page {
  std::vector<Record> records;
  std::size_t total = 0;  // records in the store
};

// Where a model's records live: Brubeck's querysets, one interface for every
// store. Records given to it are already checked by the model. Each call is
// made from a handler's fiber; a store that waits (a database) suspends only
// that fiber.
class Queryset {
 public:
  explicit Queryset(Model model) : model_(std::move(model)) {}
  virtual ~Queryset();
  Queryset(const Queryset&) = delete;
  Queryset& operator=(const Queryset&) = delete;

  const Model& model() const noexcept { return model_; }

  // Stores new records, all or none; returns them with their ids, in order.
  virtual std::vector<Record> create(const std::vector<Record>& records) = 0;
  // The records with these ids in the same order; nullopt for an unknown id.
  virtual std::vector<std::optional<Record>> read(const std::vector<ItemId>& ids) = 0;
  // Up to `limit` records from the `offset`-th, by id.
  virtual Page read_page(std::size_t offset, std::size_t limit) = 0;
  // Sets the given fields of a record (a null value clears one); returns the
  // whole record after, or nullopt when there is no such id.
  virtual std::optional<Record> update(ItemId id, const Record& fields) = 0;
  // Removes every one of `ids`, or none: returns the ids it does not hold
  // (nothing was removed then), or an empty list.
  virtual std::vector<ItemId> destroy(const std::vector<ItemId>& ids) = 0;

 private:
  Model model_;
};

// In this process's memory (Brubeck's DictQueryset): one store shared by
// every shard, behind a mutex. Gone at exit.
class MemoryQueryset final : public Queryset {
 public:
  explicit MemoryQueryset(Model model) : Queryset(std::move(model)) {}
  std::vector<Record> create(const std::vector<Record>& records) override;
  std::vector<std::optional<Record>> read(const std::vector<ItemId>& ids) override;
  Page read_page(std::size_t offset, std::size_t limit) override;
  std::optional<Record> update(ItemId id, const Record& fields) override;
  std::vector<ItemId> destroy(const std::vector<ItemId>& ids) override;

 private:
  std::mutex mutex_;
  std::map<ItemId, Record> records_;
  ItemId last_id_ = 0;
};

// A table in a SQLite database (the drivers' SqliteDatabase: its own thread,
// fibers wait). The table (default: the model's name) is created on first
// use if missing; an existing one is used as it is, never migrated.
class SqliteQueryset final : public Queryset {
 public:
  SqliteQueryset(std::shared_ptr<SqliteDatabase> db, Model model, std::string table = {});
  ~SqliteQueryset() override;
  std::vector<Record> create(const std::vector<Record>& records) override;
  std::vector<std::optional<Record>> read(const std::vector<ItemId>& ids) override;
  Page read_page(std::size_t offset, std::size_t limit) override;
  std::optional<Record> update(ItemId id, const Record& fields) override;
  std::vector<ItemId> destroy(const std::vector<ItemId>& ids) override;

 private:
  void ensure_table();
  std::shared_ptr<SqliteDatabase> db_;
  std::string table_;  // quoted
  std::string columns_;
  // Set once the table exists; fibers arriving before all run CREATE ... IF
  // NOT EXISTS (a once_flag would block a shard's thread on another fiber).
  std::atomic<bool> created_{false};
};

// A table in PostgreSQL, through the calling shard's PgPool
// (PgPool::for_this_shard(conninfo, pool_size)). The table is created on
// first use if missing, as for SQLite.
class PostgresQueryset final : public Queryset {
 public:
  PostgresQueryset(std::string conninfo, Model model, std::string table = {},
                   std::size_t pool_size = 4);
  std::vector<Record> create(const std::vector<Record>& records) override;
  std::vector<std::optional<Record>> read(const std::vector<ItemId>& ids) override;
  Page read_page(std::size_t offset, std::size_t limit) override;
  std::optional<Record> update(ItemId id, const Record& fields) override;
  std::vector<ItemId> destroy(const std::vector<ItemId>& ids) override;

 private:
  void ensure_table();
  std::string conninfo_;
  std::size_t pool_size_;
  std::string table_;  // quoted
  std::string columns_;
  std::atomic<bool> created_{false};
};

// Redis, through the calling shard's RedisClient::for_this_shard: a hash per
// record (PREFIX:ID, fields as text, null fields absent), a sorted set
// PREFIX:ids as the index and a counter PREFIX:next for ids. Each operation
// is one Lua script, so atomic. The prefix defaults to "autoapi:" + the
// model's name. The scripts name their keys themselves: a single server or a
// replicated one, not a Redis Cluster.
class RedisQueryset final : public Queryset {
 public:
  RedisQueryset(std::string host, std::uint16_t port, Model model, std::string prefix = {});
  std::vector<Record> create(const std::vector<Record>& records) override;
  std::vector<std::optional<Record>> read(const std::vector<ItemId>& ids) override;
  Page read_page(std::size_t offset, std::size_t limit) override;
  std::optional<Record> update(ItemId id, const Record& fields) override;
  std::vector<ItemId> destroy(const std::vector<ItemId>& ids) override;

 private:
  std::string host_;
  std::uint16_t port_;
  std::string prefix_;
};

struct AutoApiOptions {
  // The routes are base + model name: "/" gives "/todo/" (Brubeck's
  // api_base_url).
  std::string base = "/";
  // A listing without ?limit= gives this many; ?limit= above max_limit is a
  // 400. max_limit also caps the records of one POST and the ids of one URL.
  std::size_t default_limit = 50;
  std::size_t max_limit = 1000;
  // Runs before every method of these routes, e.g. to require a user or a
  // token: throw HttpError(401) or (403) to refuse (the reply is JSON).
  std::function<void(WebMessageHandler&)> prepare{};
};

// The three routes above, for a route table (tests, or an app assembling its
// own): _schema, then the ids, then the collection.
std::vector<RouteSpec> autoapi_routes(std::shared_ptr<Queryset> queryset,
                                      const AutoApiOptions& options = {});
// Adds those routes to the app (Brubeck's app.register_api), and once
// Brubeck's BASE/manifest.json: the JSON Schemas of every model registered.
void register_api(App& app, std::shared_ptr<Queryset> queryset, const AutoApiOptions& options = {});

}  // namespace brubeck

// Every AutoAPI queryset through the same tests, against its real store: a
// map in memory, a SQLite file, a PostgreSQL server and a Redis server
// (started for the suite, stopped by pid). Each body runs as a fiber of a
// real reactor, as handler code does on a shard.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <brubeck/apps/autoapi.hpp>
#include <brubeck/drivers/sqlite.hpp>
#include <brubeck/pipeline/spawn.hpp>

#include "support/fiber_runner.hpp"
#include "support/postgres_server.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/shared_server.hpp"

namespace brubeck {
namespace {

using testing::run_fiber;

Model item_model() {
  return Model("item",
               {Field::string("text", {.required = true, .max_length = 40}),
                Field::boolean("done", {.default_value = false}),
                Field::integer("rank", {.min = -1e15, .max = 1e15}), Field::number("score")});
}

// Each test gets a store of its own (fresh file, table or key prefix).
std::string next_store(const char* prefix) {
  static std::atomic<int> n{0};
  std::string name = prefix;
  name += std::to_string(++n);
  return name;
}

struct Memory {
  static void start() {}
  static void stop() {}
  static std::string error() { return {}; }
  static bool ready() { return true; }
  static std::shared_ptr<Queryset> make() { return std::make_shared<MemoryQueryset>(item_model()); }
};

struct Sqlite {
  static void start() { dir = std::make_unique<testing::TempDir>("brubeck-autoapi-sqlite"); }
  static void stop() { dir.reset(); }
  static std::string error() { return {}; }
  static bool ready() { return dir != nullptr; }
  static std::shared_ptr<Queryset> make() {
    auto db = SqliteDatabase::open(dir->path() + next_store("/store") + ".db");
    return std::make_shared<SqliteQueryset>(db, item_model());
  }
  static std::unique_ptr<testing::TempDir> dir;
};
std::unique_ptr<testing::TempDir> Sqlite::dir;

struct Postgres {
  static void start() { server = testing::start_shared<testing::PostgresServer>(failure); }
  static void stop() { server.reset(); }
  static std::string error() { return failure; }
  static bool ready() { return server != nullptr; }
  static std::shared_ptr<Queryset> make() {
    return std::make_shared<PostgresQueryset>(server->conninfo(), item_model(), next_store("item"));
  }
  static std::unique_ptr<testing::PostgresServer> server;
  static std::string failure;
};
std::unique_ptr<testing::PostgresServer> Postgres::server;
std::string Postgres::failure;

struct Redis {
  static void start() { server = testing::start_shared<testing::RedisServer>(failure); }
  static void stop() { server.reset(); }
  static std::string error() { return failure; }
  static bool ready() { return server != nullptr; }
  static std::shared_ptr<Queryset> make() {
    return std::make_shared<RedisQueryset>("127.0.0.1", static_cast<std::uint16_t>(server->port()),
                                           item_model(), next_store("t"));
  }
  static std::unique_ptr<testing::RedisServer> server;
  static std::string failure;
};
std::unique_ptr<testing::RedisServer> Redis::server;
std::string Redis::failure;

template <class Store>
class QuerysetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { Store::start(); }
  static void TearDownTestSuite() { Store::stop(); }
  // A server that did not start fails every test (support/shared_server.hpp).
  void SetUp() override { ASSERT_TRUE(Store::ready()) << Store::error(); }

  // The fields a create stores for `body` (defaults filled in).
  static Record fields(const nlohmann::ordered_json& body) {
    FieldErrors errors;
    auto r = item_model().check(body, Model::Check::create, errors);
    EXPECT_TRUE(errors.empty());
    return r;
  }
  static std::vector<Record> make_items(Queryset& qs, int n) {
    std::vector<Record> items;
    for (int i = 1; i <= n; ++i) items.push_back(fields({{"text", "item " + std::to_string(i)}}));
    return qs.create(items);
  }
};

using Stores = ::testing::Types<Memory, Sqlite, Postgres, Redis>;
class StoreNames {
 public:
  template <class T>
  static std::string GetName(int) {
    if (std::is_same_v<T, Memory>) return "Memory";
    if (std::is_same_v<T, Sqlite>) return "Sqlite";
    if (std::is_same_v<T, Postgres>) return "Postgres";
    return "Redis";
  }
};
TYPED_TEST_SUITE(QuerysetTest, Stores, StoreNames);

TYPED_TEST(QuerysetTest, CreateAssignsRisingIdsAndReadsThemBack) {
  run_fiber([] {
    auto qs = TypeParam::make();
    auto created = TestFixture::make_items(*qs, 3);
    ASSERT_EQ(created.size(), 3u);
    EXPECT_EQ(created[0]["id"], 1);
    EXPECT_EQ(created[2]["id"], 3);
    EXPECT_EQ(created[1].dump(),
              R"({"id":2,"text":"item 2","done":false,"rank":null,"score":null})");
    auto read = qs->read({2, 99, 1});
    ASSERT_EQ(read.size(), 3u);
    ASSERT_TRUE(read[0]);
    EXPECT_EQ(*read[0], created[1]);
    EXPECT_FALSE(read[1]);
    ASSERT_TRUE(read[2]);
    EXPECT_EQ((*read[2])["text"], "item 1");
  });
}

TYPED_TEST(QuerysetTest, EveryTypeRoundTrips) {
  run_fiber([] {
    auto qs = TypeParam::make();
    const std::string text = "caf\xc3\xa9 \"q\" \\ ' ; DROP TABLE item; -- \xe2\x9c\x93";
    auto created = qs->create({TestFixture::fields(
        {{"text", text}, {"done", true}, {"rank", -900719925474099}, {"score", 0.1}})});
    auto back = qs->read({created.at(0)["id"].template get<ItemId>()}).at(0);
    ASSERT_TRUE(back);
    EXPECT_EQ((*back)["text"], text);
    EXPECT_EQ((*back)["done"], true);
    EXPECT_EQ((*back)["rank"], -900719925474099);
    EXPECT_EQ((*back)["score"].template get<double>(), 0.1);
    EXPECT_EQ(*back, created.at(0));
  });
}

TYPED_TEST(QuerysetTest, PagesGoByIdAndCountEverything) {
  run_fiber([] {
    auto qs = TypeParam::make();
    auto empty = qs->read_page(0, 10);
    EXPECT_EQ(empty.total, 0u);
    EXPECT_TRUE(empty.records.empty());
    TestFixture::make_items(*qs, 5);
    auto page = qs->read_page(1, 2);
    EXPECT_EQ(page.total, 5u);
    ASSERT_EQ(page.records.size(), 2u);
    EXPECT_EQ(page.records[0]["id"], 2);
    EXPECT_EQ(page.records[1]["id"], 3);
    auto last = qs->read_page(4, 10);
    ASSERT_EQ(last.records.size(), 1u);
    EXPECT_EQ(last.records[0]["text"], "item 5");
    auto past = qs->read_page(10, 10);
    EXPECT_EQ(past.total, 5u);
    EXPECT_TRUE(past.records.empty());
  });
}

TYPED_TEST(QuerysetTest, UpdateChangesOnlyTheFieldsGiven) {
  run_fiber([] {
    auto qs = TypeParam::make();
    auto id = TestFixture::make_items(*qs, 2).at(1)["id"].template get<ItemId>();
    Record change = {{"done", true}, {"rank", 7}};
    auto after = qs->update(id, change);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->dump(), R"({"id":2,"text":"item 2","done":true,"rank":7,"score":null})");
    // null clears a field
    after = qs->update(id, Record{{"rank", nullptr}, {"score", 2.5}});
    ASSERT_TRUE(after);
    EXPECT_EQ((*after)["rank"], nullptr);
    EXPECT_EQ((*after)["score"], 2.5);
    EXPECT_EQ(*qs->read({id}).at(0), *after);
    // nothing to change: the record as it is
    EXPECT_EQ(*qs->update(id, Record::object()), *after);
    EXPECT_FALSE(qs->update(99, change));
    EXPECT_EQ((*qs->read({1}).at(0))["done"], false);  // the other one untouched
  });
}

TYPED_TEST(QuerysetTest, DestroyRemovesAllOrNone) {
  run_fiber([] {
    auto qs = TypeParam::make();
    TestFixture::make_items(*qs, 3);
    EXPECT_EQ(qs->destroy({1, 99, 98}), (std::vector<ItemId>{99, 98}));
    EXPECT_TRUE(qs->read({1}).at(0));  // nothing removed
    EXPECT_TRUE(qs->destroy({3, 1}).empty());
    auto left = qs->read_page(0, 10);
    EXPECT_EQ(left.total, 1u);
    ASSERT_EQ(left.records.size(), 1u);
    EXPECT_EQ(left.records[0]["id"], 2);
    EXPECT_EQ(qs->destroy({3}), (std::vector<ItemId>{3}));
    // ids are never handed out again
    EXPECT_EQ(TestFixture::make_items(*qs, 1).at(0)["id"], 4);
  });
}

TYPED_TEST(QuerysetTest, ConcurrentCreatesGetDistinctIds) {
  run_fiber([] {
    auto qs = TypeParam::make();
    std::vector<std::vector<Record>> results(8);
    std::vector<Joinable<void>> fibers;
    for (std::size_t i = 0; i < results.size(); ++i)
      fibers.push_back(spawn([&, i] { results[i] = TestFixture::make_items(*qs, 3); }));
    for (auto& f : fibers) f.join();
    std::set<ItemId> ids;
    for (const auto& r : results)
      for (const auto& rec : r) ids.insert(rec["id"].template get<ItemId>());
    EXPECT_EQ(ids.size(), 24u);
    EXPECT_EQ(qs->read_page(0, 100).total, 24u);
  });
}

// One store, two shards: each thread runs its own reactor, as shards do.
TYPED_TEST(QuerysetTest, TwoShardsShareOneStore) {
  std::shared_ptr<Queryset> qs;
  run_fiber([&] { qs = TypeParam::make(); });
  std::vector<Record> a, b;
  std::thread other([&] { run_fiber([&] { a = TestFixture::make_items(*qs, 20); }); });
  run_fiber([&] { b = TestFixture::make_items(*qs, 20); });
  other.join();
  std::set<ItemId> ids;
  for (const auto* records : {&a, &b})
    for (const auto& rec : *records) ids.insert(rec["id"].template get<ItemId>());
  EXPECT_EQ(ids.size(), 40u);
  run_fiber([&] { EXPECT_EQ(qs->read_page(0, 100).total, 40u); });
}

}  // namespace
}  // namespace brubeck

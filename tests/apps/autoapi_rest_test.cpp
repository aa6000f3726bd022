// The AutoAPI's HTTP side: statuses, headers and JSON bodies of every route,
// through the testing kit's client (the real dispatcher and route table on
// a fiber of a real reactor), over a MemoryQueryset (the
// stores themselves are covered by autoapi_queryset_test.cpp), and once over
// SQLite.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include <brubeck/apps/autoapi.hpp>
#include <brubeck/drivers/sqlite.hpp>
#include <brubeck/handlers/http_error.hpp>
#include <brubeck/testing.hpp>

#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace brubeck {
namespace {

using Json = nlohmann::ordered_json;
using testing::TestClient;
using testing::TestResponse;

Model todo_model() {
  return Model("todo", {Field::string("text", {.required = true, .max_length = 10}),
                        Field::boolean("done", {.default_value = false}),
                        Field::integer("order", {.min = 0, .max = 100, .default_value = 0})});
}

class AutoApiRest : public ::testing::Test {
 protected:
  TestResponse call(const std::string& method, const std::string& path, std::string body = {},
                    const std::string& query = {}, std::string type = "application/json") {
    return client_.request(method, query.empty() ? path : path + "?" + query, std::move(body),
                           {{"content-type", std::move(type)}});
  }
  static Json json(const TestResponse& r) { return Json::parse(r.body); }
  static std::string header(const TestResponse& r, std::string_view name) {
    return r.find_header(name).value_or("<none>");
  }

  TestClient client_{autoapi_routes(std::make_shared<MemoryQueryset>(todo_model()),
                                    {.default_limit = 2, .max_limit = 5})};
};

TEST_F(AutoApiRest, CreateIs201WithLocationAndDefaults) {
  auto r = call("POST", "/todo/", R"({"text":"milk"})");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(header(r, "Location"), "/todo/1");
  EXPECT_EQ(header(r, "Content-Type"), "application/json");
  EXPECT_EQ(r.body, R"({"id":1,"text":"milk","done":false,"order":0})");
  // Without the trailing slash too, as Brubeck's pattern allowed.
  r = call("POST", "/todo", R"({"text":"eggs","done":true,"order":3})");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, R"({"id":2,"text":"eggs","done":true,"order":3})");
  EXPECT_EQ(call("GET", "/todo/2").body, r.body);
}

TEST_F(AutoApiRest, InvalidRecordIs400WithAMessagePerField) {
  auto r = call("POST", "/todo/", R"({"done":"yes","order":101,"colour":"red","id":4})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json(r), Json::parse(R"({"error":"invalid todo","fields":{
      "colour":"unknown field","done":"must be true or false","id":"is assigned by the server",
      "order":"must be at most 100","text":"required"}})"));
  r = call("POST", "/todo/", R"({"text":"much too long","order":1.5})");
  EXPECT_EQ(json(r)["fields"], Json::parse(R"({"order":"must be an integer",
      "text":"must be at most 10 characters"})"));
  // Ten characters of two bytes each fit.
  EXPECT_EQ(
      call("POST", "/todo/",
           "{\"text\":"
           "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}")
          .status,
      201);
  EXPECT_EQ(json(call("POST", "/todo/", R"([1])"))["fields"]["[0]."], "must be a JSON object");
  EXPECT_EQ(json(call("POST", "/todo/", R"("text")"))["fields"]["(body)"], "must be a JSON object");
  EXPECT_EQ(header(call("GET", "/todo/"), "X-Total-Count"), "1");  // only the valid one stored
}

TEST_F(AutoApiRest, BrokenOrEmptyBodiesAre400) {
  auto r = call("POST", "/todo/", R"({"text": "x",)");
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(
      json(r)["error"].get<std::string>().starts_with("the body is not valid JSON: parse error"))
      << r.body;
  EXPECT_EQ(json(call("POST", "/todo/", ""))["error"], "the body is empty: send JSON");
  EXPECT_EQ(call("POST", "/todo/", "{\"text\":\"\xff\"}").status, 400);  // not UTF-8
  EXPECT_EQ(json(call("POST", "/todo/", std::string(100, '[') + std::string(100, ']')))["error"],
            "the body is nested too deeply");
  EXPECT_EQ(call("GET", "/todo/").body, "[]");
}

TEST_F(AutoApiRest, BrubecksFormFieldDataIsReadToo) {
  auto r = call("POST", "/todo/", "data=%7B%22text%22%3A%22form%22%7D", {},
                "application/x-www-form-urlencoded");
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json(r)["text"], "form");
}

TEST_F(AutoApiRest, AnArrayCreatesSeveralOrNone) {
  auto r = call("POST", "/todo/", R"([{"text":"a"},{"text":"b","order":-1},{"done":1}])");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json(r)["fields"], Json::parse(R"({"[1].order":"must be at least 0",
      "[2].done":"must be true or false","[2].text":"required"})"));
  EXPECT_EQ(call("GET", "/todo/").body, "[]");
  r = call("POST", "/todo/", R"([{"text":"a"},{"text":"b"}])");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(header(r, "Location"), "<none>");
  EXPECT_EQ(
      r.body,
      R"([{"id":1,"text":"a","done":false,"order":0},{"id":2,"text":"b","done":false,"order":0}])");
  EXPECT_EQ(call("POST", "/todo/", "[]").status, 400);
  EXPECT_EQ(json(call("POST", "/todo/", R"([{"text":"a"},{"text":"a"},{"text":"a"},
      {"text":"a"},{"text":"a"},{"text":"a"}])"))["error"],
            "at most 5 records at once");
}

TEST_F(AutoApiRest, ListPagesWithOffsetAndLimit) {
  call("POST", "/todo/", R"([{"text":"a"},{"text":"b"},{"text":"c"}])");
  auto r = call("GET", "/todo/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json(r).size(), 2u);  // default_limit
  EXPECT_EQ(header(r, "X-Total-Count"), "3");
  EXPECT_EQ(header(r, "Link"), R"(</todo/?offset=2&limit=2>; rel="next")");
  r = call("GET", "/todo/", {}, "offset=2&limit=2");
  ASSERT_EQ(json(r).size(), 1u);
  EXPECT_EQ(json(r)[0]["text"], "c");
  EXPECT_EQ(header(r, "Link"), "<none>");
  EXPECT_EQ(json(call("GET", "/todo/", {}, "limit=5")).size(), 3u);
  for (const char* bad : {"limit=0", "limit=6", "limit=x", "offset=-1", "offset=1e3"}) {
    r = call("GET", "/todo/", {}, bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_TRUE(json(r)["error"].get<std::string>().find("must be a whole number") !=
                std::string::npos);
  }
}

TEST_F(AutoApiRest, SeveralIdsReadAndDeleteTogether) {
  call("POST", "/todo/", R"([{"text":"a"},{"text":"b"},{"text":"c"}])");
  auto r = call("GET", "/todo/3,1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json(r)[0]["id"], 3);
  EXPECT_EQ(json(r)[1]["id"], 1);
  EXPECT_EQ(json(call("GET", "/todo/2/"))["text"], "b");  // one id: the object itself
  r = call("GET", "/todo/1,9,8");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":"no todo with id 9, 8","missing":[9,8]})");
  r = call("DELETE", "/todo/1,9");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json(r)["missing"], Json::parse("[9]"));
  EXPECT_EQ(call("GET", "/todo/1").status, 200);  // nothing deleted
  r = call("DELETE", "/todo/1,3,1");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(call("GET", "/todo/1").status, 404);
  EXPECT_EQ(header(call("GET", "/todo/"), "X-Total-Count"), "1");
  EXPECT_EQ(call("GET", "/todo/1,2,3,4,5,6").status, 400);  // over max_limit ids
}

TEST_F(AutoApiRest, IdsThatNameNoRecordAre404) {
  for (const char* path : {"/todo/abc", "/todo/0", "/todo/-1", "/todo/+1", "/todo/1,",
                           "/todo/99999999999999999999", "/todo/1.5"}) {
    auto r = call("GET", path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_TRUE(json(r).contains("error")) << path;
  }
  EXPECT_EQ(call("PUT", "/todo/7", R"({"text":"x"})").status, 404);
  EXPECT_EQ(call("PATCH", "/todo/7", R"({"done":true})").status, 404);
  EXPECT_EQ(call("DELETE", "/todo/7").status, 404);
}

TEST_F(AutoApiRest, PutReplacesAndPatchChanges) {
  call("POST", "/todo/", R"({"text":"milk","done":true,"order":5})");
  // PUT: fields left out take their defaults; the "id" a client read back
  // may come along if it matches.
  auto r = call("PUT", "/todo/1", R"({"id":1,"text":"oat milk"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"id":1,"text":"oat milk","done":false,"order":0})");
  EXPECT_EQ(json(call("PUT", "/todo/1", R"({"id":2,"text":"x"})"))["fields"]["id"],
            "does not match the URL");
  EXPECT_EQ(json(call("PUT", "/todo/1", R"({"done":true})"))["fields"]["text"], "required");
  EXPECT_EQ(json(call("PUT", "/todo/1,2", R"({"text":"x"})"))["error"],
            "PUT and PATCH take one id");
  // PATCH: only what is sent.
  r = call("PATCH", "/todo/1", R"({"done":true})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"id":1,"text":"oat milk","done":true,"order":0})");
  EXPECT_EQ(json(call("PATCH", "/todo/1", R"({"text":null})"))["fields"]["text"], "required");
  EXPECT_EQ(call("GET", "/todo/1").body, r.body);
}

TEST_F(AutoApiRest, SchemaDescribesTheModel) {
  auto r = call("GET", "/todo/_schema");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(header(r, "Content-Type"), "application/schema+json");
  EXPECT_EQ(json(r), Json::parse(R"({
    "$schema":"https://json-schema.org/draft/2020-12/schema","title":"todo","type":"object",
    "properties":{"id":{"type":"integer","readOnly":true},
      "text":{"type":"string","maxLength":10},
      "done":{"type":"boolean","default":false},
      "order":{"type":"integer","minimum":0.0,"maximum":100.0,"default":0}},
    "required":["text"],"additionalProperties":false})"));
}

TEST_F(AutoApiRest, MethodsARouteLacksAre405WithAllow) {
  auto r = call("POST", "/todo/1", R"({"text":"x"})");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(header(r, "Allow"), "GET, HEAD, PUT, PATCH, DELETE, OPTIONS");
  EXPECT_EQ(json(r)["error"], "Method Not Allowed");
  EXPECT_EQ(call("DELETE", "/todo/").status, 405);
  r = call("OPTIONS", "/todo/");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(header(r, "Allow"), "GET, HEAD, POST, OPTIONS");
}

TEST(AutoApiModel, RefusesBadDeclarations) {
  EXPECT_THROW(Model("To-do", {Field::string("text")}), std::invalid_argument);
  EXPECT_THROW(Model("todo", {}), std::invalid_argument);
  EXPECT_THROW(Model("todo", {Field::string("id")}), std::invalid_argument);
  EXPECT_THROW(Model("todo", {Field::string("a"), Field::integer("a")}), std::invalid_argument);
  EXPECT_THROW(Model("todo", {Field::integer("n", {.max = 3, .default_value = 4})}),
               std::invalid_argument);
  EXPECT_THROW(Model("todo", {Field::boolean("b", {.default_value = "no"})}),
               std::invalid_argument);
  auto qs = std::make_shared<MemoryQueryset>(todo_model());
  EXPECT_THROW(autoapi_routes(qs, {.base = "api/"}), std::invalid_argument);
  EXPECT_THROW(autoapi_routes(qs, {.default_limit = 10, .max_limit = 5}), std::invalid_argument);
  EXPECT_THROW(autoapi_routes(nullptr), std::invalid_argument);
}

TEST(AutoApiPrepare, RunsBeforeEveryMethodAndCanRefuse) {
  TestClient client(autoapi_routes(std::make_shared<MemoryQueryset>(todo_model()),
                                   {.prepare = [](WebMessageHandler& h) {
                                     if (h.request().header_or("authorization", "") != "Token t")
                                       throw HttpError(401);
                                   }}));
  auto refused = client.get("/todo/");
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.body, R"({"error":"Unauthorized"})");
  auto allowed = client.get("/todo/", {{"authorization", "Token t"}});
  EXPECT_EQ(allowed.status, 200);
  EXPECT_EQ(allowed.body, "[]");
}

// A store that cannot be reached: 503, as JSON, and the shard goes on.
TEST(AutoApiRedisDown, IsA503) {
  testing::RedisServer redis;
  const auto port = static_cast<std::uint16_t>(redis.port());
  redis.stop();
  TestClient client(
      autoapi_routes(std::make_shared<RedisQueryset>("127.0.0.1", port, todo_model())));
  auto r = client.get("/todo/1");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"error":"Service Unavailable"})");
}

// The same routes over SQLite, from a fiber, with a base path: what the demo does.
TEST(AutoApiSqlite, RoundTripThroughTheRoutes) {
  testing::TempDir dir("brubeck-autoapi-rest");
  auto db = SqliteDatabase::open(dir.path() + "/todos.db");
  TestClient client(
      autoapi_routes(std::make_shared<SqliteQueryset>(db, todo_model()), {.base = "/api/"}));
  auto call = [&](const std::string& method, const std::string& path, std::string body = {}) {
    return client.request(method, path, std::move(body), {{"content-type", "application/json"}});
  };
  auto r = call("POST", "/api/todo/", R"({"text":"sqlite"})");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.headers.front().second, "/api/todo/1");
  EXPECT_EQ(call("PATCH", "/api/todo/1", R"({"done":true})").body,
            R"({"id":1,"text":"sqlite","done":true,"order":0})");
  EXPECT_EQ(call("GET", "/api/todo/").body, R"([{"id":1,"text":"sqlite","done":true,"order":0}])");
  EXPECT_EQ(call("DELETE", "/api/todo/1").status, 204);
  EXPECT_EQ(call("GET", "/api/todo/1").status, 404);
  EXPECT_EQ(call("GET", "/todo/").status, 404);  // only under the base
}

}  // namespace
}  // namespace brubeck

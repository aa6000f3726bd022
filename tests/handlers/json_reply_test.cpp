// JSON replies: set_json writes any nlohmann value with invalid UTF-8
// replaced (never sent raw), and the payload is a JSON object that
// add_to_payload and payload() fill alike, rendered as Brubeck's was.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "brubeck/handlers/dispatch.hpp"
#include "brubeck/handlers/handler.hpp"
#include "handlers/test_support.hpp"

namespace brubeck {
namespace {

std::string header_of(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

class Reply : public WebMessageHandler {
 public:
  void get() override {
    nlohmann::json value = {{"name", "caf\xe9 \"q\"\n"},
                            {"n", -3},
                            {"big", 18446744073709551615u},
                            {"x", 1.5},
                            {"ok", true},
                            {"none", nullptr},
                            {"list", {1, "two", nlohmann::json::object()}}};
    set_json(value);
  }
};

TEST(JsonReply, SetJsonReplacesInvalidUtf8AndSetsTheType) {
  RouteTable routes({class_route<Reply>("^/r$")});
  auto r = dispatch(routes, testing::make_request("GET", "/r"));
  EXPECT_EQ(r.response.status, 200);
  EXPECT_EQ(header_of(r.response, "Content-Type"), "application/json");
  // nlohmann::json's objects are sorted by key.
  EXPECT_EQ(r.response.body,
            "{\"big\":18446744073709551615,\"list\":[1,\"two\",{}],\"n\":-3,"
            "\"name\":\"caf\xef\xbf\xbd \\\"q\\\"\\n\",\"none\":null,\"ok\":true,\"x\":1.5}");
  EXPECT_FALSE(nlohmann::json::parse(r.response.body).is_discarded());
}

class Payload : public JSONMessageHandler {
 public:
  void get() override {
    add_to_payload("message", "hi");
    payload()["items"] = nlohmann::json::array({{{"id", 1}, {"done", false}}});
    add_to_payload("message", "bye \xff");  // keeps its first position
    add_raw_to_payload("raw", R"({"b":[1,2]})");
    add_to_payload("n", 3);
  }
};

TEST(JsonReply, PayloadKeepsOrderAndRendersAsBefore) {
  RouteTable routes({class_route<Payload>("^/p$")});
  auto r = dispatch(routes, testing::make_request("GET", "/p"));
  EXPECT_EQ(header_of(r.response, "Content-Type"), "application/json");
  const std::string head =
      "{\"status_code\":200,\"status_msg\":\"OK\",\"message\":\"bye \xef\xbf\xbd\","
      "\"items\":[{\"done\":false,\"id\":1}],\"raw\":{\"b\":[1,2]},\"n\":3,\"timestamp\":";
  EXPECT_EQ(r.response.body.substr(0, head.size()), head) << r.response.body;
}

class BadRaw : public JSONMessageHandler {
 public:
  void get() override { add_raw_to_payload("raw", "{not json"); }
};

TEST(JsonReply, RawPayloadThatIsNotJsonIsA500) {
  RouteTable routes({class_route<BadRaw>("^/b$")});
  EXPECT_EQ(dispatch(routes, testing::make_request("GET", "/b")).response.status, 500);
}

}  // namespace
}  // namespace brubeck

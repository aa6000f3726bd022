// JSON replies: set_json writes any nlohmann value with invalid UTF-8
// replaced (never sent raw), and the payload is a JSON object that
// add_to_payload and payload() fill alike, rendered as Brubeck's was.
#include <brubeck/testing.hpp>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "brubeck/handlers/handler.hpp"

namespace brubeck {
namespace {

using testing::TestClient;

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
  TestClient client({class_route<Reply>("^/r$")});
  auto r = client.get("/r");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.raw.find("\r\nContent-Type: application/json\r\n"), std::string::npos) << r.raw;
  // nlohmann::json's objects are sorted by key.
  EXPECT_EQ(r.body,
            "{\"big\":18446744073709551615,\"list\":[1,\"two\",{}],\"n\":-3,"
            "\"name\":\"caf\xef\xbf\xbd \\\"q\\\"\\n\",\"none\":null,\"ok\":true,\"x\":1.5}");
  EXPECT_FALSE(r.json().is_discarded());
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
  TestClient client({class_route<Payload>("^/p$")});
  auto r = client.get("/p");
  EXPECT_NE(r.raw.find("\r\nContent-Type: application/json\r\n"), std::string::npos) << r.raw;
  const std::string head =
      "{\"status_code\":200,\"status_msg\":\"OK\",\"message\":\"bye \xef\xbf\xbd\","
      "\"items\":[{\"done\":false,\"id\":1}],\"raw\":{\"b\":[1,2]},\"n\":3,\"timestamp\":";
  EXPECT_EQ(r.body.substr(0, head.size()), head) << r.body;
}

class BadRaw : public JSONMessageHandler {
 public:
  void get() override { add_raw_to_payload("raw", "{not json"); }
};

TEST(JsonReply, RawPayloadThatIsNotJsonIsA500) {
  TestClient client({class_route<BadRaw>("^/b$")});
  EXPECT_EQ(client.get("/b").status, 500);
}

}  // namespace
}  // namespace brubeck

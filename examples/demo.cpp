// The demo app that deploy/run serves behind Mongrel2: ports of Brubeck's
// demo_minimal, demo_urlargs, demo_noclasses and demo_longpolling, plus two
// routes that show the shards at work.
#include <brubeck/brubeck.hpp>

#include <chrono>
#include <ctime>
#include <stdexcept>
#include <string>

namespace {

using namespace std::chrono_literals;

// demo_minimal
class DemoHandler : public brubeck::WebMessageHandler {
 public:
  void get() override { set_body("Take five, " + get_argument("name", "dude") + "!"); }
};

class IndexHandler : public brubeck::WebMessageHandler {
 public:
  void get() override { set_body("Take five!"); }
};

// demo_urlargs: a positional group reaches the handler.
class NameHandler : public brubeck::WebMessageHandler {
 public:
  void get() override { set_body("Take five, " + std::string(get_url_arg(0)) + "!"); }
};

// demo_longpolling: the wait suspends this request's fiber only.
class FeedHandler : public brubeck::WebMessageHandler {
 public:
  void get() override {
    brubeck::this_fiber::sleep_for(2s);
    std::time_t now = std::time(nullptr);
    char text[64];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    set_header("Content-Type", "text/plain; charset=utf-8");
    set_body(std::string(text) + "\n");
  }
};

class JsonHandler : public brubeck::JSONMessageHandler {
 public:
  void get() override {
    add_to_payload("message", "Take five, " + get_argument("name", "dude") + "!");
  }
};

class ShardHandler : public brubeck::JSONMessageHandler {
 public:
  void get() override {
    hide_status();
    add_to_payload("shard", static_cast<std::int64_t>(message().shard_index()));
    add_to_payload("conn_id", message().conn_id());
  }
};

class BoomHandler : public brubeck::WebMessageHandler {
 public:
  void get() override { throw std::runtime_error("boom: this handler always fails"); }
};

}  // namespace

int main(int argc, char** argv) {
  brubeck::App app{brubeck::load_config(argc, argv)};
  app.route<IndexHandler>(R"(^/$)");
  app.route<DemoHandler>(R"(^/brubeck$)");
  app.route<NameHandler>(R"(^/class/(\w+)$)");
  // demo_noclasses: a function route with a named group, GET only.
  app.route(R"(^/fun/(?P<name>\w+)$)", {brubeck::Method::get}, [](brubeck::WebMessageHandler& h) {
    h.set_body("Take five, " + std::string(h.get_url_arg("name")) + "!");
  });
  app.route<FeedHandler>(R"(^/feed$)");
  app.route<JsonHandler>(R"(^/json$)");
  app.route<ShardHandler>(R"(^/shard$)");
  app.route<BoomHandler>(R"(^/boom$)");
  return app.run();
}

// The smallest app on the installed brubeck: one handler class, the
// configuration from file, environment and command line (--version too).
#include <brubeck/brubeck.hpp>
#include <brubeck/drivers/redis.hpp>

#include <string>

namespace {

class HelloHandler : public brubeck::WebMessageHandler {
 public:
  void get() override {
    set_header("Content-Type", "text/plain; charset=utf-8");
    set_body("Hello from outside, " + get_argument("name", "world") + "!\n");
  }
};

}  // namespace

int main(int argc, char** argv) {
  brubeck::App app{brubeck::load_config(argc, argv)};
  app.route<HelloHandler>(R"(^/$)");
  return app.run();
}

#include <brubeck/brubeck.hpp>

int main(int argc, char** argv) {
  brubeck::App app(brubeck::load_config(argc, argv));
  return app.run();
}

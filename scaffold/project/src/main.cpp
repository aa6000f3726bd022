// Settings come from --config FILE (or BRUBECK_CONFIG), then BRUBECK_*
// environment variables, then the command line: `@NAME@ --help` lists them,
// `@NAME@ --version` prints the version.
#include "app.hpp"

int main(int argc, char** argv) {
  brubeck::App app{brubeck::load_config(argc, argv)};
  @NAME@::setup(app);
  return app.run();
}

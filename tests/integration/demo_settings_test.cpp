// The demo's own settings (demo.*) join the framework's table: documented by
// --print-config-table, read from BRUBECK_DEMO_*, --demo-* and [demo], and a
// bad value stops the demo with exit 2 naming the key and its source (and
// so do templates that do not compile).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "support/process.hpp"

namespace brubeck::testing {
namespace {

using namespace std::chrono_literals;

void expect_has(const std::string& text, const std::string& needle) {
  EXPECT_NE(text.find(needle), std::string::npos) << "'" << needle << "' not in: " << text;
}

TEST(DemoSettings, TableListsTheDemoSettings) {
  auto [status, output] =
      run_process(binary_path("examples/brubeck_demo"), {"--print-config-table"}, 10s);
  EXPECT_EQ(status, 0) << output;
  expect_has(output, "| `max_in_flight` |");
  expect_has(output, "| `demo.redis` | `BRUBECK_DEMO_REDIS` | `--demo-redis` |");
  expect_has(output, "| `demo.pg` | `BRUBECK_DEMO_PG` | `--demo-pg` |");
  expect_has(output, "| `demo.pg_pool` | `BRUBECK_DEMO_PG_POOL` | `--demo-pg-pool` | 8 |");
  expect_has(output, "| `demo.sqlite` | `BRUBECK_DEMO_SQLITE` | `--demo-sqlite` | `:memory:` |");
  expect_has(
      output,
      "| `demo.faults` | `BRUBECK_DEMO_FAULTS` (1/0) | `--demo-faults` / `--no-demo-faults` |");
}

// The pages are read at start-up: a folder without them stops the demo
// before it serves anything, naming the file.
TEST(DemoSettings, MissingPageExitsTwoNamingTheFile) {
  TempDir dir("brubeck-demo-pages");
  auto [status, output] =
      run_process(binary_path("examples/brubeck_demo"), {"--demo-pages", dir.path()}, 10s);
  EXPECT_EQ(status, 2) << output;
  expect_has(output, "cannot read " + dir.path() + "/longpoll.html");
}

TEST(DemoSettings, BadValueExitsTwoNamingKeyAndSource) {
  const auto demo = binary_path("examples/brubeck_demo");
  {
    auto [status, output] = run_process(demo, {"--demo-pg-pool", "0"}, 10s);
    EXPECT_EQ(status, 2) << output;
    expect_has(output, "command line --demo-pg-pool: demo.pg_pool = 0");
    expect_has(output, "expected an integer from 1 to 90");
  }
  {
    ChildOptions options;
    options.env = {{"BRUBECK_DEMO_FAULTS", "maybe"}};
    auto [status, output] = run_process(demo, {}, 10s, options);
    EXPECT_EQ(status, 2) << output;
    expect_has(output, "environment variable BRUBECK_DEMO_FAULTS: demo.faults");
    expect_has(output, "expected true or false");
  }
  {
    TempDir dir("brubeck-demo-settings");
    auto file = dir.path() + "/demo.toml";
    std::ofstream(file) << "shards = 1\n[demo]\npg_pool = 500\n";
    ChildOptions options;
    options.env = {{"BRUBECK_CONFIG", file}};
    auto [status, output] = run_process(demo, {}, 10s, options);
    EXPECT_EQ(status, 2) << output;
    expect_has(output, "config file " + file + ":3: demo.pg_pool = 500");
  }
}

// Templates that do not compile stop the start like a bad setting: exit 2,
// one error naming every broken file with its line and column.
TEST(DemoSettings, BrokenTemplatesExitTwoNamingEachFile) {
  TempDir dir("brubeck-demo-templates");
  std::filesystem::create_directories(dir.path() + "/errors");
  std::ofstream(dir.path() + "/success.mustache") << "<h1>{{name}</h1>\n";
  std::ofstream(dir.path() + "/errors/404.mustache") << "ok\n{{#open}}\n";
  std::ofstream(dir.path() + "/fine.mustache") << "{{name}}";
  auto [status, output] =
      run_process(binary_path("examples/brubeck_demo"), {"--templates", dir.path()}, 10s);
  EXPECT_EQ(status, 2) << output;
  expect_has(output, "cannot start");
  expect_has(output, "success.mustache:1:5: Unclosed tag");
  expect_has(output, "errors/404.mustache:2:1: Unclosed section \"open\"");
  EXPECT_EQ(output.find("fine.mustache"), std::string::npos) << output;
}

}  // namespace
}  // namespace brubeck::testing

#include "brubeck/config/config.hpp"
#include "brubeck/version.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

namespace brubeck {
namespace {

struct Env {
  std::map<std::string, std::string> vars;
  std::function<const char*(const char*)> fn() const {
    return [this](const char* n) -> const char* {
      auto it = vars.find(n);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

std::string write_temp(const std::string& text) {
  char path[] = "/tmp/brubeck-config-XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(Config, DefaultsAreValid) {
  Env env;
  auto c = parse_config({"prog"}, env.fn());
  EXPECT_EQ(c.send_specs, std::vector<std::string>{"tcp://127.0.0.1:9997"});
  EXPECT_GE(c.shard_count(), 1u);
}

TEST(Config, CommandLineBeatsEnvironmentBeatsFile) {
  auto file =
      write_temp("shards = 3\nlog_level = \"warn\"\nsend_specs = [\"tcp://a:1\", \"tcp://b:2\"]\n");
  Env env{{{"BRUBECK_SHARDS", "5"}}};
  auto c = parse_config({"prog", "--config", file}, env.fn());
  EXPECT_EQ(c.shards, 5u);
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_EQ(c.send_specs.size(), 2u);
  c = parse_config({"prog", "--config", file, "--shards", "7", "--send-spec", "ipc://x"}, env.fn());
  EXPECT_EQ(c.shards, 7u);
  EXPECT_EQ(c.send_specs, std::vector<std::string>{"ipc://x"});
  std::remove(file.c_str());
}

// Every documented file key is accepted (the file once refused half of them).
TEST(Config, FileTakesEveryKey) {
  auto file = write_temp(
      "cookie_secrets = [\"0123456789abcdef0123\"]\nmax_body_bytes = 1000\n"
      "mongrel2_chroot = \"/srv/m2\"\nupload_store = \"/srv/m2/tmp\"\n"
      "request_timeout_ms = 2500\noffload_threads = 3\noffload_queue = 10\n"
      "stack_guard = false\n");
  Env env{{{"BRUBECK_OFFLOAD_QUEUE", "20"}}};
  auto c = parse_config({"prog", "--config", file}, env.fn());
  EXPECT_EQ(c.cookie_secrets.size(), 1u);
  EXPECT_EQ(c.max_body_bytes, 1000u);
  EXPECT_EQ(c.mongrel2_chroot, "/srv/m2");
  EXPECT_EQ(c.upload_store, "/srv/m2/tmp");
  EXPECT_EQ(c.request_timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(c.offload_threads, 3u);
  EXPECT_EQ(c.offload_queue, 20u);
  EXPECT_FALSE(c.stack_guard);
  EXPECT_TRUE(parse_config({"prog"}, Env{}.fn()).stack_guard);
  EXPECT_FALSE(parse_config({"prog", "--no-stack-guard"}, Env{}.fn()).stack_guard);
  c = parse_config({"prog", "--config", file, "--request-timeout-ms", "0"}, env.fn());
  EXPECT_EQ(c.request_timeout, std::chrono::milliseconds(0));
  std::remove(file.c_str());
}

TEST(Config, BadValuesAreClearErrors) {
  Env env;
  auto expect_error = [&](std::vector<std::string> args, const Env& e, std::string needle) {
    try {
      parse_config(args, e.fn());
      ADD_FAILURE() << "no error for " << needle;
    } catch (const ConfigError& err) {
      EXPECT_NE(std::string(err.what()).find(needle), std::string::npos) << err.what();
    }
  };
  expect_error({"prog", "--shards", "many"}, env, "shards");
  expect_error({"prog", "--send-spec", "http://x"}, env, "send_specs");
  expect_error({"prog", "--log-level", "loud"}, env, "log_level");
  expect_error({"prog", "--stack-size", "100"}, env, "stack_size");
  expect_error({"prog", "--bogus"}, env, "bogus");
  expect_error({"prog", "--offload-queue", "0"}, env, "offload_queue");
  expect_error({"prog", "--request-timeout-ms", "999999999999"}, env, "request_timeout_ms");
  expect_error({"prog"}, Env{{{"BRUBECK_SHARDS", "-1"}}}, "BRUBECK_SHARDS");
  auto typo = write_temp("shard = 2\n");
  expect_error({"prog", "--config", typo}, env, "unknown key 'shard'");
  auto broken = write_temp("shards = [\n");
  expect_error({"prog", "--config", broken}, env, "config file");
  expect_error({"prog", "--config", "/nonexistent/brubeck.toml"}, env, "config file");
  std::remove(typo.c_str());
  std::remove(broken.c_str());
}

TEST(Config, HelpCarriesText) {
  Env env;
  try {
    parse_config({"prog", "--help"}, env.fn());
    FAIL();
  } catch (const ConfigHelp& h) {
    EXPECT_NE(h.text.find("--shards"), std::string::npos);
  }
}

// The number comes from project(brubeck VERSION ...) through the generated
// header; every App's main() answers --version through load_config.
TEST(Config, VersionNamesTheProgramAndBrubeck) {
  std::string v = std::to_string(BRUBECK_VERSION_MAJOR) + "." +
                  std::to_string(BRUBECK_VERSION_MINOR) + "." +
                  std::to_string(BRUBECK_VERSION_PATCH);
  EXPECT_EQ(v, BRUBECK_VERSION);
  EXPECT_EQ(v, BRUBECK_PROJECT_VERSION);
  Env env;
  for (const char* program : {"/opt/app/bin/my_app", "my_app"}) {
    try {
      parse_config({program, "--shards", "2", "--version"}, env.fn());
      FAIL() << "--version did not stop parsing";
    } catch (const ConfigHelp& h) {
      EXPECT_EQ(h.text, "my_app (brubeck " + v + ")\n");
    }
  }
}

}  // namespace
}  // namespace brubeck

// The demo's pages in a real browser: headless chromium, driven by the
// scripts in tests/browser (one per page, on tests/browser/browser.mjs),
// against the demo behind a real Mongrel2. Screenshots go to the build
// tree's browser-screenshots/.
#include <gtest/gtest.h>

#include "harness.hpp"

namespace brubeck::testing {
namespace {

// Brubeck's long-polling page: at least two answers of /feed appear.
TEST(Browser, LongPollPageShowsTheFeedsAnswers) {
  DemoServer server;
  expect_browser_script_passes(server, "longpoll");
  server.expect_clean_stop();
}

// demo_mustache: the page from templates, the client's markup shown as text,
// and the templated 404 page.
TEST(Browser, MustachePageEscapesTheNameAndTheMissingPageIsTemplated) {
  DemoServer server;
  expect_browser_script_passes(server, "mustache");
  server.expect_clean_stop();
}

// demo_login: a wrong then the right password, the private page, log out.
TEST(Browser, LoginWrongThenRightPasswordPrivatePageLogout) {
  DemoServer server({.args = {"--cookie-secret", "browser-test-secret-0123456789"}});
  expect_browser_script_passes(server, "login");
  server.expect_clean_stop();
}

// The live page (live_route): uPlot (built into the library) charts
// /metrics per shard; under the script's slow requests its readouts show
// the traffic (requests per second, p99, in flight) and a row for each of
// the three shards, adding up to the totals. The screenshot stays with the output.
TEST(Browser, LivePageChartsTheMetricsPerShard) {
  DemoServer server({.args = {"--shards", "3"}});
  expect_browser_script_passes(server, "live");
  server.expect_clean_stop();
}

}  // namespace
}  // namespace brubeck::testing

// The access log and the metrics, through real Mongrel2 and the demo: one
// line per request with the right fields, in either format, whatever bytes
// the request carries; the file opened again on SIGHUP (rotation), without
// stopping anything; sampling; and /metrics in Prometheus' text format, whose
// counters move by exactly the requests made.
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/harness.hpp"
#include "support/process.hpp"

namespace brubeck::testing {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The file's lines once it holds at least `n` (the writer flushes about
// every 100 ms); fails after 10 s.
std::vector<std::string> wait_for_lines(const std::string& path, std::size_t n) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    auto lines = lines_of(read_file(path));
    if (lines.size() >= n || std::chrono::steady_clock::now() > deadline) return lines;
    std::this_thread::sleep_for(20ms);
  }
}

// A raw request on its own connection; returns the response.
HttpResponse raw_get(int port, std::string_view target, const Headers& headers = {}) {
  HttpConnection client(port);
  return client.request("GET", target, headers);
}

// The combined format with brubeck's three fields (micros, shard, conn id).
// A quoted field holds no bare '"' and no byte outside printable ASCII.
const std::regex kCombined(
    R"re(^(\S+) - - \[\d\d/[A-Z][a-z][a-z]/\d{4}:\d\d:\d\d:\d\d \+0000\] "((?:[ !#-\[\]-~]|\\.)*)" )re"
    R"re((\d{3}) (\d+|-) "((?:[ !#-\[\]-~]|\\.)*)" "((?:[ !#-\[\]-~]|\\.)*)" )re"
    R"re((\d+) (\d+) (\d+)$)re");

class AccessLogTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_) server_->expect_clean_stop();
  }
  void start(std::vector<std::string> args) {
    server_ = std::make_unique<DemoServer>(DemoOptions{.args = std::move(args)});
  }
  TempDir dir_{"brubeck-access-log"};
  std::string log_ = dir_.path() + "/access.log";
  std::unique_ptr<DemoServer> server_;
};

TEST_F(AccessLogTest, CombinedLinesCarryEveryField) {
  start({"--access-log", log_, "--shards", "2"});
  const auto before = wait_for_lines(log_, 1).size();  // the harness's readiness GETs
  auto r = raw_get(server_->port(), "/brubeck?name=x",
                   {{"User-Agent", "probe/1.0"}, {"Referer", "http://example.test/a"}});
  ASSERT_EQ(r.status, 200);
  auto missing = raw_get(server_->port(), "/no/such/page");
  ASSERT_EQ(missing.status, 404);
  auto lines = wait_for_lines(log_, before + 2);
  ASSERT_EQ(lines.size(), before + 2) << read_file(log_);
  std::smatch m;
  const std::string ok = lines[before];
  ASSERT_TRUE(std::regex_match(ok, m, kCombined)) << ok;
  EXPECT_EQ(m[1], "127.0.0.1") << ok;
  EXPECT_EQ(m[2], "GET /brubeck?name=x HTTP/1.1") << ok;
  EXPECT_EQ(m[3], "200") << ok;
  EXPECT_EQ(m[4], std::to_string(r.body.size())) << ok;  // "Take five, x!"
  EXPECT_EQ(m[5], "http://example.test/a") << ok;
  EXPECT_EQ(m[6], "probe/1.0") << ok;
  EXPECT_LT(std::stoul(m[8]), 2u) << "shard index out of range: " << ok;
  const std::string nf = lines[before + 1];
  ASSERT_TRUE(std::regex_match(nf, m, kCombined)) << nf;
  EXPECT_EQ(m[2], "GET /no/such/page HTTP/1.1") << nf;
  EXPECT_EQ(m[3], "404") << nf;
  EXPECT_EQ(m[5], "-") << nf;
}

// Quotes, backslashes, bytes that are not UTF-8 and encoded newlines cannot
// break a line or a field: one request, one well-formed line, in both
// formats.
TEST_F(AccessLogTest, OddBytesAreEscapedInCombinedLines) {
  start({"--access-log", log_, "--shards", "1"});
  const auto before = wait_for_lines(log_, 1).size();
  const std::string agent = "evil \"agent\" \\ \xff\xfe end";
  // Mongrel2 refuses a raw quote or byte over 0x7f in the request line
  // itself (400, never reaching us): there they come percent-encoded.
  auto r = raw_get(server_->port(), "/odd%22path%0A%0D%FF?q=%22x%0A",
                   {{"User-Agent", agent}, {"Referer", "a\"b"}});
  EXPECT_EQ(r.status, 404);
  auto lines = wait_for_lines(log_, before + 1);
  ASSERT_EQ(lines.size(), before + 1) << read_file(log_);
  std::smatch m;
  const std::string line = lines[before];
  ASSERT_TRUE(std::regex_match(line, m, kCombined)) << line;
  EXPECT_EQ(m[5], R"(a\"b)") << line;
  EXPECT_EQ(m[6], R"(evil \"agent\" \\ \xff\xfe end)") << line;
  EXPECT_NE(std::string(m[2]).find("/odd"), std::string::npos) << line;
}

TEST_F(AccessLogTest, JsonLinesParseWithEveryField) {
  start({"--access-log", log_, "--access-log-format", "json", "--shards", "1"});
  const auto before = wait_for_lines(log_, 1).size();
  const std::string agent = "evil \"agent\" \\ \xff ok \xc3\xa9";
  auto r = raw_get(server_->port(), "/brubeck?name=%22%0Ax", {{"User-Agent", agent}});
  ASSERT_EQ(r.status, 200);
  auto lines = wait_for_lines(log_, before + 1);
  ASSERT_EQ(lines.size(), before + 1) << read_file(log_);
  for (const auto& line : lines) {
    // nlohmann's parser is strict: it rejects invalid UTF-8 and bare control bytes.
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(line)) << line;
    for (const char* key : {"time", "remote", "method", "path", "query", "version", "status",
                            "bytes", "micros", "shard", "conn", "referer", "user_agent"})
      EXPECT_TRUE(j.contains(key)) << key << " missing: " << line;
  }
  auto j = nlohmann::json::parse(lines[before]);
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["path"], "/brubeck");
  EXPECT_EQ(j["query"], "name=%22%0Ax");
  EXPECT_EQ(j["version"], "HTTP/1.1");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["bytes"], r.body.size());
  EXPECT_EQ(j["shard"], 0);
  EXPECT_EQ(j["remote"], "127.0.0.1");
  EXPECT_TRUE(j["micros"].is_number_unsigned());
  EXPECT_FALSE(j["conn"].get<std::string>().empty());
  // Valid UTF-8 is kept; a stray byte becomes the text \xff.
  EXPECT_EQ(j["user_agent"], "evil \"agent\" \\ \\xff ok \xc3\xa9");
}

// logrotate's way: move the file, send SIGHUP; the next lines go to a new
// file of the old name, and the server serves on (SIGHUP neither stops nor
// drains it).
TEST_F(AccessLogTest, SighupOpensTheFileAgain) {
  start({"--access-log", log_, "--shards", "2"});
  ASSERT_EQ(raw_get(server_->port(), "/brubeck?name=before").status, 200);
  auto old_lines = wait_for_lines(log_, 1);
  ASSERT_FALSE(old_lines.empty());
  // Every line of the request before is in: wait for its own.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (read_file(log_).find("name=before") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  const std::string rotated = log_ + ".1";
  ASSERT_EQ(std::rename(log_.c_str(), rotated.c_str()), 0);
  ASSERT_EQ(::kill(server_->demo().pid(), SIGHUP), 0);
  // The reopen is the run loop's: wait until the new file exists.
  deadline = std::chrono::steady_clock::now() + 10s;
  while (!std::filesystem::exists(log_) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(std::filesystem::exists(log_)) << server_->demo().output();
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(raw_get(server_->port(), "/brubeck?name=after" + std::to_string(i)).status, 200);
  auto fresh = wait_for_lines(log_, 5);
  ASSERT_EQ(fresh.size(), 5u) << read_file(log_);
  for (int i = 0; i < 5; ++i)
    EXPECT_NE(fresh[i].find("name=after" + std::to_string(i)), std::string::npos) << fresh[i];
  const auto old_text = read_file(rotated);
  EXPECT_NE(old_text.find("name=before"), std::string::npos);
  EXPECT_EQ(old_text.find("name=after"), std::string::npos);
  EXPECT_TRUE(server_->demo().running());
  EXPECT_EQ(count_of(server_->demo().output(), "SIGHUP received, access log opened again"), 1u);
}

// Sampling per shard: one request in N. One shard makes the count exact;
// everything queued is written by the time the demo has stopped.
TEST_F(AccessLogTest, SampleZeroLogsNothingAndSampleThreeOneInThree) {
  start({"--access-log", log_, "--shards", "1", "--access-log-sample", "0"});
  for (int i = 0; i < 10; ++i) ASSERT_EQ(raw_get(server_->port(), "/brubeck").status, 200);
  EXPECT_EQ(server_->demo().stop(SIGTERM), 0);
  EXPECT_TRUE(std::filesystem::exists(log_));
  EXPECT_EQ(read_file(log_), "");
  server_.reset();

  std::filesystem::remove(log_);
  start({"--access-log", log_, "--shards", "1", "--access-log-sample", "3"});
  // Where the sampler stands after the readiness checks is unknown: any 30
  // requests in a row hold exactly 10 logged ones.
  for (int i = 0; i < 30; ++i) ASSERT_EQ(raw_get(server_->port(), "/brubeck").status, 200);
  EXPECT_EQ(server_->demo().stop(SIGTERM), 0);
  const auto lines = lines_of(read_file(log_));
  std::size_t brubeck = 0;
  for (const auto& l : lines)
    if (l.find("\"GET /brubeck HTTP/1.1\"") != std::string::npos) ++brubeck;
  EXPECT_EQ(brubeck, 10u) << read_file(log_);
}

// A log file that cannot be opened stops the start (exit 2), naming it.
TEST(AccessLogStart, UnopenableFileExitsTwo) {
  auto [status, output] = run_process(binary_path("examples/brubeck_demo"),
                                      {"--access-log", "/nonexistent-dir/access.log"}, 30s);
  EXPECT_EQ(status, 2) << output;
  EXPECT_NE(output.find("cannot open access log /nonexistent-dir/access.log"), std::string::npos)
      << output;
}

// --- metrics ---

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// A strict reading of the text format 0.0.4: every line is a HELP, a TYPE
// or a sample; every sample's family has a TYPE before it; label values
// are quoted with only \\, \" and \n escapes.
std::vector<Sample> parse_exposition(const std::string& text) {
  static const std::regex kHelp(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*$)");
  static const std::regex kType(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex kSample(
      R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (\S+)$)re");
  static const std::regex kLabel(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)")re");
  std::map<std::string, std::string> types;
  std::vector<Sample> out;
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  for (const auto& line : lines_of(text)) {
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) continue;
    if (std::regex_match(line, m, kType)) {
      EXPECT_TRUE(types.emplace(m[1], m[2]).second) << "two TYPE lines for " << m[1];
      continue;
    }
    if (!std::regex_match(line, m, kSample)) {
      ADD_FAILURE() << "not a sample line: '" << line << "'";
      continue;
    }
    Sample s{m[1], {}, 0};
    std::string labels = m[3];
    for (std::sregex_iterator it(labels.begin(), labels.end(), kLabel), end; it != end; ++it)
      s.labels[(*it)[1]] = (*it)[2];
    const std::string v = m[4];
    s.value = v == "+Inf" ? INFINITY : v == "-Inf" ? -INFINITY : std::stod(v);
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (!types.count(family) && family.ends_with(suffix) &&
          types.count(family.substr(0, family.size() - std::strlen(suffix))) &&
          types[family.substr(0, family.size() - std::strlen(suffix))] == "histogram")
        family = family.substr(0, family.size() - std::strlen(suffix));
    EXPECT_TRUE(types.count(family)) << "no TYPE before " << line;
    out.push_back(std::move(s));
  }
  return out;
}

double value_of(const std::vector<Sample>& samples, const std::string& name,
                const std::map<std::string, std::string>& labels) {
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : labels)
      if (!s.labels.count(k) || s.labels.at(k) != v) all = false;
    if (all) return s.value;
  }
  ADD_FAILURE() << "no sample " << name;
  return -1;
}

class MetricsTest : public ::testing::Test {
 protected:
  void TearDown() override { server_.expect_clean_stop(); }
  std::vector<Sample> scrape() {
    auto r = raw_get(server_.port(), "/metrics");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    last_ = r.body;
    return parse_exposition(r.body);
  }
  DemoServer server_{DemoOptions{.args = {"--shards", "2"}}};
  std::string last_;
};

TEST_F(MetricsTest, CountersAndHistogramsMoveByTheRequestsMade) {
  const auto a = scrape();
  constexpr int kN = 25;
  for (int i = 0; i < kN; ++i) ASSERT_EQ(raw_get(server_.port(), "/brubeck?name=x").status, 200);
  ASSERT_EQ(raw_get(server_.port(), "/no/such/page").status, 404);
  const auto b = scrape();
  // The first scrape itself is a 2xx the second one sees.
  EXPECT_EQ(value_of(b, "brubeck_requests_total", {{"status", "2xx"}}) -
                value_of(a, "brubeck_requests_total", {{"status", "2xx"}}),
            kN + 1);
  EXPECT_EQ(value_of(b, "brubeck_requests_total", {{"status", "4xx"}}) -
                value_of(a, "brubeck_requests_total", {{"status", "4xx"}}),
            1);
  const std::map<std::string, std::string> route{{"route", "^/brubeck$"}};
  EXPECT_EQ(value_of(b, "brubeck_request_duration_seconds_count", route) -
                value_of(a, "brubeck_request_duration_seconds_count", route),
            kN);
  EXPECT_GT(value_of(b, "brubeck_request_duration_seconds_sum", route),
            value_of(a, "brubeck_request_duration_seconds_sum", route));
  // Buckets are cumulative, end at +Inf = count.
  double previous = 0;
  int buckets = 0;
  for (const auto& s : b) {
    if (s.name != "brubeck_request_duration_seconds_bucket" || s.labels.at("route") != "^/brubeck$")
      continue;
    EXPECT_GE(s.value, previous) << "le=" << s.labels.at("le");
    previous = s.value;
    ++buckets;
  }
  EXPECT_EQ(buckets, 16);
  EXPECT_EQ(value_of(b, "brubeck_request_duration_seconds_bucket",
                     {{"route", "^/brubeck$"}, {"le", "+Inf"}}),
            value_of(b, "brubeck_request_duration_seconds_count", route));
  // A pattern with a backslash comes back escaped, and parses back whole.
  EXPECT_NE(last_.find(R"(route="^/class/(\\w+)$")"), std::string::npos);
  // Per shard: requests taken sum up, none in flight but the scrape itself.
  double taken = 0, in_flight = 0;
  for (const auto& s : b) {
    if (s.name == "brubeck_shard_requests_total") taken += s.value;
    if (s.name == "brubeck_in_flight") in_flight += s.value;
  }
  double taken_before = 0;
  for (const auto& s : a)
    if (s.name == "brubeck_shard_requests_total") taken_before += s.value;
  EXPECT_EQ(taken - taken_before, kN + 2);  // + the 404 + the first scrape
  EXPECT_EQ(in_flight, 1);
  for (const char* name :
       {"brubeck_fibers", "brubeck_pub_dropped_total", "brubeck_shard_restarts_total",
        "brubeck_router_held_frames", "brubeck_router_frames_total", "brubeck_offload_queued"})
    EXPECT_NE(last_.find(std::string("\n# TYPE ") + name + " "), std::string::npos) << name;
}

// Prometheus' own Python parser reads the page (python3-prometheus-client).
TEST_F(MetricsTest, PrometheusClientParserReadsIt) {
  scrape();
  ASSERT_EQ(raw_get(server_.port(), "/brubeck?name=x").status, 200);
  scrape();
  TempDir dir("brubeck-metrics");
  const std::string path = dir.path() + "/metrics.txt";
  { std::ofstream(path) << last_; }
  auto [status, output] = run_process(
      "/usr/bin/python3",
      {"-c",
       "import sys\n"
       "from prometheus_client.parser import text_string_to_metric_families\n"
       "fams = list(text_string_to_metric_families(open(sys.argv[1]).read()))\n"
       "h = [f for f in fams if f.name == 'brubeck_request_duration_seconds'][0]\n"
       "assert h.type == 'histogram', h.type\n"
       "c = [s for s in h.samples if s.name.endswith('_count') and s.labels['route'] == "
       "'^/brubeck$'][0]\n"
       "assert c.value >= 1, c\n"
       "r = [f for f in fams if f.name == 'brubeck_requests'][0]\n"
       "assert r.type == 'counter', r.type\n"
       "print('families', len(fams))\n",
       path},
      30s);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("families "), std::string::npos) << output;
}

// A shard that dies and is replaced counts on: its replacement takes over
// its metrics, so counters never go down (Prometheus would read a reset).
TEST(MetricsRestart, ReplacementShardCountsOn) {
  DemoServer server{DemoOptions{.args = {"--shards", "1", "--demo-faults"}}};
  for (int i = 0; i < 5; ++i) ASSERT_EQ(raw_get(server.port(), "/brubeck").status, 200);
  auto before = parse_exposition(raw_get(server.port(), "/metrics").body);
  const double ok_before = value_of(before, "brubeck_requests_total", {{"status", "2xx"}});
  EXPECT_GE(ok_before, 5);
  EXPECT_EQ(raw_get(server.port(), "/fault/die").status, 503);
  // The replacement serves once the supervisor has started it.
  wait_for_handler(server.port(), "/brubeck", &server.demo());
  auto after = parse_exposition(raw_get(server.port(), "/metrics").body);
  EXPECT_EQ(value_of(after, "brubeck_shard_restarts_total", {}), 1);
  EXPECT_GE(value_of(after, "brubeck_requests_total", {{"status", "2xx"}}), ok_before + 2);
  const std::map<std::string, std::string> route{{"route", "^/brubeck$"}};
  EXPECT_GE(value_of(after, "brubeck_request_duration_seconds_count", route),
            value_of(before, "brubeck_request_duration_seconds_count", route) + 1);
  server.expect_clean_stop();
}

// Off unless configured: the route does not exist (nor the demo's live
// page, which needs it).
TEST(MetricsOff, NoRouteWithoutTheSetting) {
  DemoServer server{DemoOptions{.args = {"--metrics-route", "", "--live-route", ""}}};
  EXPECT_EQ(raw_get(server.port(), "/metrics").status, 404);
  EXPECT_EQ(raw_get(server.port(), "/live").status, 404);
  server.expect_clean_stop();
}

}  // namespace
}  // namespace brubeck::testing

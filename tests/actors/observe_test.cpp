// The pieces of observation on their own: the exposition text (HELP/TYPE
// once per family, escaped label values, cumulative buckets ending at +Inf),
// access-log lines in both formats with hostile bytes, the sampler, and the
// log file opened again after a rename.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "brubeck/actors/observe.hpp"

namespace brubeck {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::size_t lines_in(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

struct TempFolder {
  std::string path;
  TempFolder() {
    std::string t = (std::filesystem::temp_directory_path() / "brubeck-observe-XXXXXX").string();
    path = ::mkdtemp(t.data());
  }
  ~TempFolder() { std::filesystem::remove_all(path); }
};

TEST(MetricsExposition, WritesHelpTypeAndSamples) {
  MetricsExposition m;
  m.counter("brubeck_requests_total", "Requests answered", {{"status", "2xx"}}, 7);
  m.counter("brubeck_requests_total", "Requests answered", {{"status", "5xx"}}, 1);
  m.gauge("brubeck_in_flight", "Running", {{"shard", "0"}}, 3);
  const std::string text = m.text();
  EXPECT_EQ(text,
            "# HELP brubeck_requests_total Requests answered\n"
            "# TYPE brubeck_requests_total counter\n"
            "brubeck_requests_total{status=\"2xx\"} 7\n"
            "brubeck_requests_total{status=\"5xx\"} 1\n"
            "# HELP brubeck_in_flight Running\n"
            "# TYPE brubeck_in_flight gauge\n"
            "brubeck_in_flight{shard=\"0\"} 3\n");
}

TEST(MetricsExposition, EscapesLabelValues) {
  MetricsExposition m;
  m.counter("x_total", "x", {{"route", "^/a\\d\"q\"\nz$"}}, 1);
  EXPECT_NE(m.text().find(R"(x_total{route="^/a\\d\"q\"\nz$"} 1)"), std::string::npos) << m.text();
}

TEST(MetricsExposition, HistogramHasCumulativeBucketsInfSumAndCount) {
  MetricsExposition m;
  m.histogram("lat_seconds", "Latency", {{"route", "^/$"}}, {{0.001, 2}, {0.01, 5}}, 0.25, 6);
  EXPECT_EQ(m.text(),
            "# HELP lat_seconds Latency\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_count{route=\"^/$\"} 6\n"
            "lat_seconds_sum{route=\"^/$\"} 0.25\n"
            "lat_seconds_bucket{route=\"^/$\",le=\"0.001\"} 2\n"
            "lat_seconds_bucket{route=\"^/$\",le=\"0.01\"} 5\n"
            "lat_seconds_bucket{route=\"^/$\",le=\"+Inf\"} 6\n");
}

TEST(MetricsExposition, OneNameOneType) {
  MetricsExposition m;
  m.counter("x", "x", {}, 1);
  EXPECT_THROW(m.gauge("x", "x", {}, 1), std::logic_error);
}

TEST(ShardMetrics, CountsStatusClassesAndBuckets) {
  ShardMetrics m(2);
  m.record(0, 200, 50);          // first bucket (<= 100 us)
  m.record(0, 204, 100);         // bounds are inclusive
  m.record(1, 404, 20'000);      // <= 25 ms
  m.record(9, 503, 99'000'000);  // no such route: the last histogram, +Inf
  m.record(0, 42, 1);
  EXPECT_EQ(m.by_class[2].load(), 2u);
  EXPECT_EQ(m.by_class[4].load(), 1u);
  EXPECT_EQ(m.by_class[5].load(), 1u);
  EXPECT_EQ(m.by_class[0].load(), 1u);
  ASSERT_EQ(m.histograms(), 3u);
  EXPECT_EQ(m.histogram(0).buckets[0].load(), 3u);
  EXPECT_EQ(m.histogram(0).sum_us.load(), 151u);
  EXPECT_EQ(m.histogram(1).buckets[7].load(), 1u);  // kLatencyBucketsUs[7] = 25'000
  EXPECT_EQ(m.histogram(2).buckets[kLatencyBucketsUs.size()].load(), 1u);
}

Completion odd_completion() {
  Completion c;
  c.method = "GET";
  c.path = "/a\"b\\c\nd\xff";
  c.query = "q=\"1\"";
  c.version = "HTTP/1.1";
  c.conn_id = "42";
  c.remote = "127.0.0.1";
  c.referer = "";
  c.user_agent = "ua \xc3\xa9 \x01";
  c.status = 201;
  c.bytes = 13;
  c.micros = 1234;
  c.shard = 1;
  return c;
}

const auto kWhen = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000)) +
                   std::chrono::milliseconds(5);

TEST(AccessLine, CombinedEscapesEverythingOutsidePrintableAscii) {
  std::string line;
  format_access_line(AccessLogFormat::combined, odd_completion(), kWhen, line);
  EXPECT_EQ(line,
            "127.0.0.1 - - [14/Nov/2023:22:13:20 +0000] "
            R"("GET /a\"b\\c\x0ad\xff?q=\"1\" HTTP/1.1" 201 13 "-" "ua \xc3\xa9 \x01" 1234 1 42)");
}

TEST(AccessLine, JsonKeepsUtf8AndEscapesTheRest) {
  std::string line;
  format_access_line(AccessLogFormat::json, odd_completion(), kWhen, line);
  EXPECT_EQ(line, R"({"time":"2023-11-14T22:13:20.005Z","remote":"127.0.0.1","method":"GET",)"
                  R"("path":"/a\"b\\c\u000ad\\xff","query":"q=\"1\"","version":"HTTP/1.1",)"
                  R"("status":201,"bytes":13,"micros":1234,"shard":1,"conn":"42","referer":"",)"
                  "\"user_agent\":\"ua \xc3\xa9 \\u0001\"}");
}

TEST(AccessLine, UnknownBytesAreDashOrNull) {
  auto c = odd_completion();
  c.bytes = Completion::kUnknownBytes;
  std::string combined, json;
  format_access_line(AccessLogFormat::combined, c, kWhen, combined);
  format_access_line(AccessLogFormat::json, c, kWhen, json);
  EXPECT_NE(combined.find("\" 201 - \""), std::string::npos) << combined;
  EXPECT_NE(json.find("\"bytes\":null"), std::string::npos) << json;
}

TEST(AccessLine, FormatNames) {
  EXPECT_EQ(parse_access_log_format("json"), AccessLogFormat::json);
  EXPECT_EQ(parse_access_log_format("combined"), AccessLogFormat::combined);
  EXPECT_THROW(parse_access_log_format("common"), std::invalid_argument);
}

TEST(AccessLog, SamplesOneInN) {
  TempFolder dir;
  const std::string path = dir.path + "/a.log";
  {
    auto log = std::make_shared<AccessLog>(path, AccessLogFormat::combined, 3);
    RequestObserver observer(log, nullptr);
    for (int i = 0; i < 9; ++i) observer.completed(odd_completion());
  }  // the writer has written everything queued
  EXPECT_EQ(lines_in(slurp(path)), 3u);
  {
    auto log = std::make_shared<AccessLog>(path, AccessLogFormat::combined, 0);
    RequestObserver observer(log, nullptr);
    EXPECT_TRUE(observer.active());
    EXPECT_FALSE(observer.logs());
    for (int i = 0; i < 9; ++i) observer.completed(odd_completion());
  }
  EXPECT_EQ(lines_in(slurp(path)), 3u);
}

TEST(AccessLog, ReopenFollowsTheName) {
  TempFolder dir;
  const std::string path = dir.path + "/a.log";
  AccessLog log(path, AccessLogFormat::json, 1);
  log.write("one");
  log.flush();
  // The writer thread writes: wait for it.
  for (int i = 0; i < 500 && slurp(path).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::filesystem::rename(path, path + ".1");
  log.reopen();
  log.write("two");
  log.flush();
  for (int i = 0; i < 500 && slurp(path).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(slurp(path + ".1"), "one\n");
  EXPECT_EQ(slurp(path), "two\n");
}

TEST(AccessLog, UnopenableFileThrows) {
  EXPECT_THROW(AccessLog("/nonexistent-dir/x/a.log", AccessLogFormat::combined, 1),
               std::runtime_error);
}

}  // namespace
}  // namespace brubeck

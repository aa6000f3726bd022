// Brubeck's web handler API through a real Mongrel2 and the demo: arguments
// from query strings and form bodies, multipart uploads (inline and spooled
// by Mongrel2 to disk), plain and signed cookies, redirects.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "harness.hpp"

namespace brubeck::testing {
namespace {

std::string sha256_of(const std::string& bytes) {
  TempDir dir("brubeck-sha");
  auto path = dir.path() + "/data";
  std::ofstream(path, std::ios::binary) << bytes;
  auto [code, out] = run_process("/usr/bin/sha256sum", {path});
  EXPECT_EQ(code, 0);
  return out.substr(0, 64);
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

std::string multipart_body(const std::string& boundary, const std::string& file) {
  std::string body;
  body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n";
  body += "--" + boundary +
          "\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"data.bin\"\r\n"
          "Content-Type: application/octet-stream\r\n\r\n";
  body += file;
  body += "\r\n--" + boundary + "--\r\n";
  return body;
}

std::size_t spool_files(const std::string& dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/tmp", ec))
    if (e.path().filename().string().rfind("upload.", 0) == 0) ++n;
  return n;
}

class WebApi : public ::testing::Test {
 protected:
  void TearDown() override { server_.expect_clean_stop(); }
  int port() const { return server_.port(); }
  const std::string& m2_dir() { return server_.mongrel2().dir(); }

  DemoServer server_{DemoOptions{
      .args = {"--shards", "2", "--no-pin", "--cookie-secret", "test-secret-0123456789abcdef"},
      .mongrel2_chroot = true}};
};

TEST_F(WebApi, ArgumentsFromQueryAndFormBody) {
  HttpConnection c(port());
  auto r = c.request("GET", "/args?a=1&a=2&b=+spaced+&empty=&name=ada%20l");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(r.body, R"({"a":["1","2"],"b":["spaced"],"name":["ada l"]})");
  auto post =
      c.request("POST", "/args?q=1", {{"Content-Type", "application/x-www-form-urlencoded"}},
                "x=%C3%A9t%C3%A9&x=2&q=from+body");
  EXPECT_EQ(post.body, R"({"q":["1","from body"],"x":["été","2"]})");
  auto bad = c.request("GET", "/args?x=a%01b");
  EXPECT_EQ(bad.status, 400) << "control characters are refused";
}

TEST_F(WebApi, SmallMultipartUpload) {
  auto file = random_bytes(1024, 1);
  auto body = multipart_body("XyZzY123", file);
  HttpConnection c(port());
  auto r = c.request("POST", "/upload",
                     {{"Content-Type", "multipart/form-data; boundary=XyZzY123"}}, body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(
      r.body,
      R"([{"field":"doc","filename":"data.bin","content_type":"application/octet-stream","size":1024,"sha256":")" +
          sha256_of(file) + "\"}]");
}

TEST_F(WebApi, LargeUploadSpooledByMongrel2LooksTheSame) {
  auto file = random_bytes(5 * 1024 * 1024, 2);
  auto body = multipart_body("BoundaryForBigFile", file);
  HttpConnection c(port(), 5s, 60s);
  auto r = c.request("POST", "/upload",
                     {{"Content-Type", "multipart/form-data; boundary=BoundaryForBigFile"}}, body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(
      r.body,
      R"([{"field":"doc","filename":"data.bin","content_type":"application/octet-stream","size":5242880,"sha256":")" +
          sha256_of(file) + "\"}]");
  // The request kept the spool file alive; now it must be gone.
  for (int i = 0; i < 100 && spool_files(m2_dir()) > 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(spool_files(m2_dir()), 0u);
  // The connection still works after the upload.
  EXPECT_EQ(c.request("GET", "/brubeck?name=after").body, "Take five, after!");
}

TEST_F(WebApi, HandlerRefusesALargeUploadEarly) {
  auto body = multipart_body("Big", random_bytes(2 * 1024 * 1024, 3));
  HttpConnection c(port(), 5s, 30s);
  // Send the head and only the start of the body: the refusal must come
  // before the rest is transferred. (Sending everything races the close:
  // the client then sees EPIPE or a reset instead of the 413.)
  std::string head =
      "POST /upload/small HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: multipart/form-data; boundary=Big\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  c.send_raw(head + body.substr(0, 64 * 1024));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 413);
  EXPECT_TRUE(c.closed_by_peer(3s));
  // Mongrel2 had started spooling the body to its upload store; the refused
  // upload's file must not stay there.
  for (int i = 0; i < 100 && spool_files(m2_dir()) > 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(spool_files(m2_dir()), 0u);
  // A small one on the same route is accepted.
  auto ok_body = multipart_body("Small", random_bytes(30 * 1024, 4));
  HttpConnection c2(port(), 5s, 30s);
  auto ok = c2.request("POST", "/upload/small",
                       {{"Content-Type", "multipart/form-data; boundary=Small"}}, ok_body);
  EXPECT_EQ(ok.status, 200) << ok.body;
}

// A spooled upload to a handler that throws: a 500, and the spool file is
// deleted all the same.
TEST_F(WebApi, SpoolFileIsDeletedWhenTheHandlerThrows) {
  auto body = random_bytes(256 * 1024, 5);  // over Mongrel2's 20 KiB: spooled
  HttpConnection c(port(), 5s, 30s);
  auto r = c.request("POST", "/boom", {{"Content-Type", "application/octet-stream"}}, body);
  EXPECT_EQ(r.status, 500);
  for (int i = 0; i < 100 && spool_files(m2_dir()) > 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(spool_files(m2_dir()), 0u);
  EXPECT_EQ(c.request("GET", "/brubeck?name=after").body, "Take five, after!");
}

TEST_F(WebApi, MalformedMultipartIs400) {
  HttpConnection c(port());
  auto r = c.request("POST", "/upload", {{"Content-Type", "multipart/form-data; boundary=abc"}},
                     "--abc\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nno end");
  EXPECT_EQ(r.status, 400);
}

TEST_F(WebApi, PlainAndSignedCookies) {
  HttpConnection c(port());
  auto set = c.request("GET", "/cookies/set?flavour=mint");
  ASSERT_EQ(set.status, 200);
  std::vector<std::string> set_cookies;
  for (const auto& [k, v] : set.headers)
    if (k == "Set-Cookie") set_cookies.push_back(v.substr(0, v.find(';')));
  ASSERT_EQ(set_cookies.size(), 2u) << "each Set-Cookie on its own line";
  EXPECT_EQ(set_cookies[0], "flavour=mint");
  ASSERT_EQ(set_cookies[1].rfind("signed_flavour=", 0), 0u);
  std::string cookie = set_cookies[0] + "; " + set_cookies[1];
  auto got = c.request("GET", "/cookies", {{"Cookie", cookie}});
  EXPECT_EQ(got.body, R"({"plain":{"flavour":"mint"},"signed":{"signed_flavour":"mint"}})");
  // Tampering with the signed value makes it absent.
  auto tampered = set_cookies[1];
  tampered[std::string("signed_flavour=").size()] ^= 1;
  auto bad = c.request("GET", "/cookies", {{"Cookie", set_cookies[0] + "; " + tampered}});
  EXPECT_EQ(bad.body, R"({"plain":{"flavour":"mint"},"signed":{}})");
}

TEST_F(WebApi, RedirectsToLocalPathsOnly) {
  HttpConnection c(port());
  auto r = c.request("GET", "/redirect?to=/brubeck%3Fname%3Dx");
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.header("Location"), "/brubeck?name=x");
  EXPECT_EQ(c.request("GET", "/redirect?to=http://example.com/").status, 400);
  auto named = c.request("GET", "/redirect?word=jazz");
  EXPECT_EQ(named.status, 302);
  EXPECT_EQ(named.header("Location"), "/class/jazz") << "reverse routing by route name";
  EXPECT_EQ(c.request("GET", "/redirect?word=jazz%20time").status, 400);
  EXPECT_EQ(c.request("GET", "/redirect?to=//example.com/").status, 400);
}

}  // namespace
}  // namespace brubeck::testing

namespace brubeck::testing {
namespace {

TEST_F(WebApi, StreamedReplyArrivesInChunks) {
  HttpConnection c(port());
  auto r = c.request("GET", "/stream");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Transfer-Encoding"), "chunked");
  EXPECT_FALSE(r.has_header("Content-Length"));
  EXPECT_EQ(r.body, "chunk 1\nchunk 2\nchunk 3\n");
  EXPECT_EQ(c.request("GET", "/brubeck?name=next").body, "Take five, next!");
}

TEST_F(WebApi, DeferredReplyFinishedByAnotherFiber) {
  HttpConnection c(port());
  auto start = std::chrono::steady_clock::now();
  auto r = c.request("GET", "/later");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "finished by another fiber\n");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
}

}  // namespace
}  // namespace brubeck::testing

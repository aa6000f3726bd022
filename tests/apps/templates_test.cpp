// Templates: kainjow's Mustache over a real folder of files. Escaping,
// partials, sections, errors named with file and position, the 500 a
// handler gets for a missing or broken template, error pages from
// templates, reload in development mode (and none without it), and
// rendering from several threads while the set is replaced.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <brubeck/brubeck.hpp>
#include <brubeck/testing.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/fiber_runner.hpp"

namespace brubeck {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A fresh folder of templates under the system's temp dir, removed after.
class TemplateFolder {
 public:
  TemplateFolder() {
    auto base = fs::temp_directory_path() / "brubeck-templates-XXXXXX";
    std::string text = base.string();
    if (mkdtemp(text.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = text;
  }
  ~TemplateFolder() { fs::remove_all(path_); }
  // Writes `name`.mustache, and moves its time ahead of the last write so a
  // change is seen even within the file system's time granularity.
  void write(const std::string& name, const std::string& text) {
    auto file = path_ / (name + ".mustache");
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
    fs::last_write_time(file, fs::file_time_type::clock::now() + std::chrono::seconds(++ticks_));
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
  int ticks_ = 0;
};

// Captures what the default logger writes while it lives.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>(
        "templates-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() {
    spdlog::default_logger()->flush();
    return out_.str();
  }
  std::size_t lines_with(const std::string& needle) {
    std::istringstream in(text());
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
    return n;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST(Templates, EscapesByDefaultAndTripleMustacheIsRaw) {
  TemplateFolder dir;
  dir.write("page", "<p>{{name}}</p><div>{{{html}}}</div><i>{{&html}}</i>");
  auto t = Templates::load(dir.path());
  EXPECT_EQ(
      t->render("page", {{"name", "<script>alert('x') & \"y\"</script>"}, {"html", "<b>b</b>"}}),
      "<p>&lt;script&gt;alert(&apos;x&apos;) &amp; &quot;y&quot;&lt;/script&gt;</p>"
      "<div><b>b</b></div><i><b>b</b></i>");
}

TEST(Templates, NamesAreRelativePathsAndPartialsComeFromTheFolder) {
  TemplateFolder dir;
  dir.write("index", "{{> parts/header}}<main>{{body}}</main>");
  dir.write("parts/header", "<h1>{{title}}</h1>");
  dir.write("errors/404", "gone");
  auto t = Templates::load(dir.path());
  EXPECT_EQ(t->names(), (std::vector<std::string>{"errors/404", "index", "parts/header"}));
  // A page key named like a partial does not replace the partial.
  EXPECT_EQ(t->render("index", {{"title", "<T>"}, {"body", "b"}, {"parts/header", "no"}}),
            "<h1>&lt;T&gt;</h1><main>b</main>");
}

// Partials are inlined at load where they can be, and included by kainjow
// at render where a template includes itself; both render alike, with
// standalone lines kept as kainjow keeps them.
TEST(Templates, InlinedAndRecursivePartials) {
  TemplateFolder dir;
  dir.write("list", "<ul>\n{{#items}}\n{{> item}}\n{{/items}}\n</ul>\n");
  dir.write("item", "<li{{#done}} class=\"done\"{{/done}}>{{text}}</li>");
  dir.write("tree", "{{name}}{{#children}}({{> tree}}){{/children}}");
  auto t = Templates::load(dir.path());
  EXPECT_EQ(
      t->render("list",
                {{"items", {{{"text", "a<"}, {"done", true}}, {{"text", "b"}, {"done", false}}}}}),
      "<ul>\n<li class=\"done\">a&lt;</li>\n<li>b</li>\n</ul>\n");
  json leaf = json::array();
  EXPECT_EQ(
      t->render("tree", {{"name", "a"},
                         {"children",
                          {{{"name", "b"}, {"children", {{{"name", "d"}, {"children", leaf}}}}},
                           {{"name", "c"}, {"children", leaf}}}}}),
      "a(b(d))(c)");
}

TEST(Templates, NestedSectionsListsBooleansAndNumbers) {
  TemplateFolder dir;
  dir.write(
      "list",
      "{{#lists}}[{{name}}:{{#items}}({{text}}{{#done}}+{{/done}}{{^done}}-{{/done}}){{/items}}"
      "{{^items}}empty{{/items}}]{{/lists}}{{^lists}}none{{/lists}} n={{n}} x={{x}} "
      "{{#missing}}no{{/missing}}{{^nothing}}null is false{{/nothing}}");
  auto t = Templates::load(dir.path());
  json context = {
      {"lists",
       {{{"name", "a"},
         {"items", {{{"text", "x"}, {"done", true}}, {{"text", "<y>"}, {"done", false}}}}},
        {{"name", "b"}, {"items", json::array()}}}},
      {"n", 42},
      {"x", 1.5},
      {"nothing", nullptr}};
  EXPECT_EQ(t->render("list", context), "[a:(x+)(&lt;y&gt;-)][b:empty] n=42 x=1.5 null is false");
  EXPECT_EQ(t->render("list", {{"lists", json::array()}}).substr(0, 4), "none");
}

TEST(Templates, EverySyntaxErrorIsReportedAtLoadWithFileAndPosition) {
  TemplateFolder dir;
  dir.write("good", "fine {{x}}");
  dir.write("bad", "line one\n  {{#open}} never closed\n");
  dir.write("errors/500", "{{x}\n");
  dir.write("uses_missing", "a\nb {{> nowhere}}");
  try {
    Templates::load(dir.path());
    FAIL() << "a folder with broken templates loaded";
  } catch (const TemplateError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("bad.mustache:2:3: Unclosed section \"open\""), std::string::npos) << what;
    EXPECT_NE(what.find("errors/500.mustache:1:1: Unclosed tag"), std::string::npos) << what;
    EXPECT_NE(what.find("uses_missing.mustache:2:3: no partial 'nowhere'"), std::string::npos)
        << what;
    EXPECT_EQ(what.find("good.mustache"), std::string::npos) << what;
  }
  EXPECT_THROW(Templates::load(dir.path() + "/no-such-folder"), TemplateError);
}

class Page : public PageHandler {
 public:
  void get() override {
    render(get_argument("t", "hello"), {{"name", get_argument("name", "dude")}});
  }
};

using testing::TestClient;

// The header named exactly `name` ("" when none).
std::string header_of(const testing::TestResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

std::shared_ptr<HandlerSettings> settings_with(const std::shared_ptr<Templates>& t) {
  auto settings = std::make_shared<HandlerSettings>();
  Services services;
  services.provide(t);
  settings->services = std::make_shared<const Services>(std::move(services));
  settings->error_page = [t](WebMessageHandler& h, int status) {
    render_error_page(*t, h, status);
  };
  return settings;
}

TEST(Templates, PageHandlerRendersHtml) {
  TemplateFolder dir;
  dir.write("hello", "<p>Take five, {{name}}!</p>");
  auto settings = settings_with(Templates::load(dir.path()));
  TestClient client({class_route<Page>("^/page$")}, settings);
  auto r = client.get("/page?name=%3Cb%3E");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<p>Take five, &lt;b&gt;!</p>");
  EXPECT_EQ(header_of(r, "Content-Type"), "text/html; charset=utf-8");
}

TEST(Templates, MissingTemplateIsA500WithOneLogLine) {
  TemplateFolder dir;
  dir.write("hello", "hi");
  auto settings = settings_with(Templates::load(dir.path()));
  TestClient client({class_route<Page>("^/page$")}, settings);
  LogCapture log;
  for (int i = 0; i < 5; ++i) {
    auto r = client.get("/page?t=nope");
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(r.body.find("nope"), std::string::npos) << "internals shown to the client";
  }
  // Five failures within a second: one line, naming the template.
  EXPECT_EQ(log.lines_with("no template 'nope'"), 1u) << log.text();
}

TEST(Templates, ErrorPagesComeFromTheFolder) {
  TemplateFolder dir;
  dir.write("hello", "hi");
  dir.write("errors/404", "<h1>{{status}} {{reason}}</h1><p>{{path}}</p>");
  dir.write("errors/500", "<h1>oops {{status}}</h1>");
  auto settings = settings_with(Templates::load(dir.path()));
  TestClient client({class_route<Page>("^/page$")}, settings);
  auto r = client.get("/nowhere<x>");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "<h1>404 Not Found</h1><p>/nowhere&lt;x&gt;</p>");
  EXPECT_EQ(header_of(r, "Content-Type"), "text/html; charset=utf-8");
  // A missing template is answered by errors/500.
  r = client.get("/page?t=nope");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "<h1>oops 500</h1>");
  // No errors/405: the built-in text.
  r = client.post("/page");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(header_of(r, "Content-Type"), "text/plain; charset=utf-8");
}

TEST(Templates, ReloadsAChangedFolderInDevelopmentMode) {
  TemplateFolder dir;
  dir.write("page", "one {{x}}");
  auto t =
      Templates::load(dir.path(), {.reload = true, .check_interval = std::chrono::milliseconds(0)});
  EXPECT_EQ(t->render("page", {{"x", 1}}), "one 1");
  dir.write("page", "two {{x}}");
  dir.write("added", "new");
  EXPECT_EQ(t->render("page", {{"x", 2}}), "two 2");
  EXPECT_EQ(t->render("added", json::object()), "new");
  EXPECT_EQ(t->generation(), 2u);
  // Nothing changed: the set is kept.
  EXPECT_FALSE(t->reload_if_changed());
  EXPECT_EQ(t->generation(), 2u);
}

TEST(Templates, ABrokenReloadIsA500NamingFileAndPositionUntilFixed) {
  TemplateFolder dir;
  dir.write("hello", "<p>{{name}}</p>{{> part}}");
  dir.write("part", "ok");
  auto t =
      Templates::load(dir.path(), {.reload = true, .check_interval = std::chrono::milliseconds(0)});
  auto settings = settings_with(t);
  TestClient client({class_route<Page>("^/page$")}, settings);
  LogCapture log;
  dir.write("part", "ok\n{{#a}}");
  auto r = client.get("/page?t=part");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(log.lines_with("part.mustache:2:1: Unclosed section \"a\""), 2u)
      << "one line at reload, one at render:\n"
      << log.text();
  // A page including it is broken too, and says through which partial.
  r = client.get("/page?t=hello");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(log.lines_with("hello.mustache:1:16: partial 'part' does not compile"), 1u)
      << log.text();
  dir.write("part", "fixed");
  r = client.get("/page?t=hello&name=x");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<p>x</p>fixed");
}

TEST(Templates, NoReloadWhenOffOrBeforeTheInterval) {
  TemplateFolder dir;
  dir.write("page", "one");
  auto fixed = Templates::load(dir.path());
  auto slow =
      Templates::load(dir.path(), {.reload = true, .check_interval = std::chrono::hours(1)});
  dir.write("page", "two");
  EXPECT_EQ(fixed->render("page", json::object()), "one");
  EXPECT_EQ(slow->render("page", json::object()), "one");
  EXPECT_EQ(fixed->generation(), 1u);
  EXPECT_EQ(slow->generation(), 1u);
}

TEST(Templates, ReloadFromAShardGoesThroughTheOffloadPool) {
  TemplateFolder dir;
  dir.write("page", "one");
  auto t =
      Templates::load(dir.path(), {.reload = true, .check_interval = std::chrono::milliseconds(0)});
  dir.write("page", "two");
  std::string seen;
  testing::run_fiber([&] { seen = t->render("page", json::object()); });
  EXPECT_EQ(seen, "two");
}

// Several threads render while another rewrites the folder: every page is
// whole, from one set or the next (TSan builds check for races here).
TEST(Templates, RenderingWhileReloadingFromSeveralThreads) {
  TemplateFolder dir;
  dir.write("page", "{{> part}}|{{> part}}");
  dir.write("part", "v0");
  auto t =
      Templates::load(dir.path(), {.reload = true, .check_interval = std::chrono::milliseconds(0)});
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, renders{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i)
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto page = t->render("page", json::object());
        auto bar = page.find('|');
        if (bar == std::string::npos || page.substr(0, bar) != page.substr(bar + 1)) ++bad;
        ++renders;
      }
    });
  for (int v = 1; v <= 30; ++v) {
    dir.write("part", std::string("v").append(std::to_string(v)));
    // The readers' own renders find the change (bounded, so a reload that
    // never comes fails below instead of hanging).
    const int until = renders.load() + 1'000'000;
    while (t->generation() < static_cast<std::uint64_t>(v + 1) && renders.load() < until)
      std::this_thread::yield();
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GE(t->generation(), 31u);
  EXPECT_EQ(t->render("page", json::object()), "v30|v30");
}

}  // namespace
}  // namespace brubeck

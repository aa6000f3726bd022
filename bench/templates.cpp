// Render time of a template page: the demo's page (examples/templates/
// success.mustache, two partials, an escaped name) and a list page of 100
// todo items {id, text, done} through a partial per item, both from a
// nlohmann::json context as PageHandler::render takes it. bench/apps.sh runs
// it and writes the figures.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "brubeck/apps/templates.hpp"

namespace {

namespace fs = std::filesystem;

std::string source_dir() {
  if (const char* dir = std::getenv("BRUBECK_SOURCE_DIR")) return dir;
  return fs::path(__FILE__).parent_path().parent_path().string();
}

// The demo's folder, plus a list page written to a temp folder next to a
// copy of it.
const brubeck::Templates& templates() {
  static const auto loaded = [] {
    std::string dir = (fs::temp_directory_path() / "brubeck-bench-templates-XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    fs::copy(source_dir() + "/examples/templates", dir, fs::copy_options::recursive);
    std::ofstream(dir + "/todos.mustache")
        << "{{> partials/head}}\n<h1>{{title}}</h1>\n<ul>\n{{#items}}\n{{> todo}}\n{{/items}}\n"
           "</ul>\n<p>{{count}} items</p>\n{{> partials/foot}}\n";
    std::ofstream(dir + "/todo.mustache")
        << "<li id=\"todo-{{id}}\"{{#done}} class=\"done\"{{/done}}>{{text}}</li>";
    auto t = brubeck::Templates::load(dir);
    fs::remove_all(dir);  // compiled: the files are no longer read
    return t;
  }();
  return *loaded;
}

}  // namespace

static void BM_render_demo_page(benchmark::State& state) {
  const nlohmann::json context = {{"name", "<b>Ada</b>"},
                                  {"tags", {{{"tag", "cool"}}, {{"tag", "jazz"}}}},
                                  {"has_tags", true},
                                  {"shard", 0}};
  for (auto _ : state) benchmark::DoNotOptimize(templates().render("success", context));
}
BENCHMARK(BM_render_demo_page);

static void BM_render_todo_list_100(benchmark::State& state) {
  nlohmann::json items = nlohmann::json::array();
  for (int i = 0; i < 100; ++i)
    items.push_back({{"id", 1000 + i},
                     {"text", "Buy milk, then call \"Ada\" about item #" + std::to_string(i)},
                     {"done", i % 3 == 0}});
  const nlohmann::json context = {{"title", "Todos"}, {"items", items}, {"count", 100}};
  for (auto _ : state) benchmark::DoNotOptimize(templates().render("todos", context));
}
BENCHMARK(BM_render_todo_list_100);
BENCHMARK_MAIN();

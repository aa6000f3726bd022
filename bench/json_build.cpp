// The cost of building one typical JSON reply: an object with a list of 100
// todo items {id, text, done} and a count, from the items in memory to the
// reply's text. The string concatenation the demo used (append_json_string,
// which replaces invalid UTF-8); nlohmann::json (what set_json takes) built
// then dumped with error_handler_t::replace, as set_json does; RapidJSON's
// Writer streaming (no value) and with a Document (a value,
// pool-allocated). RapidJSON validates UTF-8 and fails on invalid text
// instead of replacing it.
// bench/apps.sh runs it and writes the figures.
#include <benchmark/benchmark.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "brubeck/handlers/json.hpp"

namespace {

struct Todo {
  std::int64_t id;
  std::string text;
  bool done;
};

const std::vector<Todo>& todos() {
  static const std::vector<Todo> items = [] {
    std::vector<Todo> out;
    for (int i = 0; i < 100; ++i)
      out.push_back({1000 + i,
                     "Buy milk, then call \"Ada\" about item #" + std::to_string(i) + " (été)",
                     i % 3 == 0});
    return out;
  }();
  return items;
}

}  // namespace

static void BM_concatenation(benchmark::State& state) {
  for (auto _ : state) {
    std::string out = "{\"items\":[";
    bool first = true;
    for (const auto& t : todos()) {
      if (!first) out.push_back(',');
      first = false;
      out.append("{\"id\":");
      brubeck::append_json_number(out, t.id);
      out.append(",\"text\":");
      brubeck::append_json_string(out, t.text);
      out.append(",\"done\":").append(t.done ? "true" : "false").push_back('}');
    }
    out.append("],\"count\":");
    brubeck::append_json_number(out, static_cast<std::int64_t>(todos().size()));
    out.push_back('}');
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_concatenation);

template <class Json>
static void BM_nlohmann(benchmark::State& state) {
  for (auto _ : state) {
    Json items = Json::array();
    for (const auto& t : todos())
      items.push_back({{"id", t.id}, {"text", t.text}, {"done", t.done}});
    Json reply = {{"items", std::move(items)}, {"count", todos().size()}};
    auto out = reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK_TEMPLATE(BM_nlohmann, nlohmann::json);
BENCHMARK_TEMPLATE(BM_nlohmann, nlohmann::ordered_json);

// The same value built key by key and moved in (no initializer lists,
// which nlohmann copies).
static void BM_nlohmann_by_key(benchmark::State& state) {
  for (auto _ : state) {
    nlohmann::json reply;
    auto& items = reply["items"] = nlohmann::json::array();
    for (const auto& t : todos()) {
      nlohmann::json item;
      item["id"] = t.id;
      item["text"] = t.text;
      item["done"] = t.done;
      items.push_back(std::move(item));
    }
    reply["count"] = todos().size();
    auto out = reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_nlohmann_by_key);

// Only the dump of a value already built: what set_json itself costs.
static void BM_nlohmann_dump_only(benchmark::State& state) {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& t : todos()) items.push_back({{"id", t.id}, {"text", t.text}, {"done", t.done}});
  const nlohmann::json reply = {{"items", std::move(items)}, {"count", todos().size()}};
  for (auto _ : state) {
    auto out = reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_nlohmann_dump_only);

static void BM_rapidjson_writer(benchmark::State& state) {
  using Writer = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                   rapidjson::CrtAllocator, rapidjson::kWriteValidateEncodingFlag>;
  for (auto _ : state) {
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartObject();
    w.Key("items");
    w.StartArray();
    for (const auto& t : todos()) {
      w.StartObject();
      w.Key("id");
      w.Int64(t.id);
      w.Key("text");
      if (!w.String(t.text.data(), static_cast<rapidjson::SizeType>(t.text.size())))
        state.SkipWithError("invalid UTF-8");
      w.Key("done");
      w.Bool(t.done);
      w.EndObject();
    }
    w.EndArray();
    w.Key("count");
    w.Uint64(todos().size());
    w.EndObject();
    std::string out(buffer.GetString(), buffer.GetSize());
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_rapidjson_writer);

// RapidJSON with a value, as a handler holding a payload would use it: a
// Document (pool allocator), then the Writer.
static void BM_rapidjson_document(benchmark::State& state) {
  using Writer = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                   rapidjson::CrtAllocator, rapidjson::kWriteValidateEncodingFlag>;
  for (auto _ : state) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    rapidjson::Value items(rapidjson::kArrayType);
    for (const auto& t : todos()) {
      rapidjson::Value item(rapidjson::kObjectType);
      item.AddMember("id", t.id, a);
      item.AddMember(
          "text",
          rapidjson::Value(t.text.data(), static_cast<rapidjson::SizeType>(t.text.size()), a), a);
      item.AddMember("done", t.done, a);
      items.PushBack(std::move(item), a);
    }
    doc.AddMember("items", std::move(items), a);
    doc.AddMember("count", static_cast<std::uint64_t>(todos().size()), a);
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    if (!doc.Accept(w)) state.SkipWithError("invalid UTF-8");
    std::string out(buffer.GetString(), buffer.GetSize());
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_rapidjson_document);
BENCHMARK_MAIN();

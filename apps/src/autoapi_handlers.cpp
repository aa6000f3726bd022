// The AutoAPI's REST side: three handler classes (the schema, the ids, the
// collection) over one Queryset, the routes that reach them, and Brubeck's
// manifest of every model an app registered.
#include <spdlog/spdlog.h>

#include <charconv>
#include <set>
#include <stdexcept>
#include <utility>

#include "autoapi_sql.hpp"
#include "brubeck/actors/app.hpp"
#include "brubeck/apps/autoapi.hpp"
#include "brubeck/apps/handlers.hpp"
#include "brubeck/handlers/response.hpp"
#include "brubeck/handlers/routes.hpp"

namespace brubeck {

namespace {

using Json = nlohmann::ordered_json;

// What every handler of one model's routes shares.
struct AutoApi {
  std::shared_ptr<Queryset> queryset;
  AutoApiOptions options;
  std::string collection;  // "/todo/"
};

// A reply to the client's mistake: its status and JSON body.
struct ApiError {
  int status;
  Json body;
};

ApiError error(int status, std::string text) { return {status, Json{{"error", std::move(text)}}}; }

// Bodies nested deeper than any record are refused while parsing, before
// they cost memory or stack.
constexpr int kMaxDepth = 32;

class AutoApiHandler : public ApiHandler {
 public:
  explicit AutoApiHandler(std::shared_ptr<const AutoApi> api) : api_(std::move(api)) {}

  void prepare() override {
    if (api_->options.prepare) api_->options.prepare(*this);
  }

  // The body as set_reply() wrote it (not Brubeck's payload).
  Response render() override { return WebMessageHandler::render(); }
  void write_error(int status) override {
    set_reply(status, Json{{"error", std::string(reason_phrase(status))}});
  }

 protected:
  const Model& model() const { return api_->queryset->model(); }
  Queryset& queryset() const { return *api_->queryset; }
  const AutoApiOptions& options() const { return api_->options; }

  void set_reply(int status, const Json& body, const char* type = "application/json") {
    set_status(status);
    set_header("Content-Type", type);
    // Invalid UTF-8 cannot come in (the parser refuses it), but a store
    // written by something else may hold it: replaced, never sent.
    set_body(body.dump(-1, ' ', false, Json::error_handler_t::replace));
  }

  // Runs a method's body; the client's mistakes become their JSON reply.
  template <class F>
  void answer(F&& body) {
    try {
      body();
    } catch (const ApiError& e) {
      spdlog::debug("{} {} (conn {}): {} {}", request().method(), request().path(),
                    request().conn_id(), e.status, e.body.value("error", ""));
      set_reply(e.status, e.body);
    }
  }

  // The request's JSON: the body, or Brubeck's form field `data`.
  Json body_json() const {
    std::string text(request().body());
    if (request().content_type() == "application/x-www-form-urlencoded") {
      auto data = get_argument("data", "", false);
      if (!data.empty()) text = std::move(data);
    }
    if (text.find_first_not_of(" \t\r\n") == std::string::npos)
      throw error(400, "the body is empty: send JSON");
    try {
      return Json::parse(text, [](int depth, Json::parse_event_t, Json&) {
        if (depth > kMaxDepth) throw error(400, "the body is nested too deeply");
        return true;
      });
    } catch (const Json::parse_error& e) {
      std::string what = e.what();
      // "[json.exception.parse_error.101] parse error at ...": the tag is noise.
      if (auto end = what.find("] "); what.starts_with("[json.exception") && end != what.npos)
        what.erase(0, end + 2);
      throw error(400, "the body is not valid JSON: " + what);
    }
  }

  // The checked fields of one record, or a 400 with every field's problem.
  Record checked(const Json& body, Model::Check mode, std::optional<ItemId> id = {}) const {
    FieldErrors errors;
    Record fields = model().check(body, mode, errors, id);
    if (!errors.empty()) throw invalid(errors);
    return fields;
  }
  ApiError invalid(const FieldErrors& errors) const {
    Json fields = Json::object();
    for (const auto& [k, v] : errors) fields[k] = v;
    return {400, Json{{"error", "invalid " + model().name()}, {"fields", std::move(fields)}}};
  }

  const std::string& collection() const { return api_->collection; }
  std::string location(ItemId id) const { return collection() + std::to_string(id); }

 private:
  std::shared_ptr<const AutoApi> api_;
};

// "7", "1,2,3": ids are positive decimal integers. Anything else names no
// record: 404.
class ItemsHandler : public AutoApiHandler {
 public:
  using AutoApiHandler::AutoApiHandler;

  void get() override {
    answer([&] {
      auto ids = url_ids();
      auto found = queryset().read(ids);
      Json list = Json::array();
      std::vector<ItemId> missing;
      for (std::size_t i = 0; i < ids.size(); ++i) {
        if (found[i])
          list.push_back(std::move(*found[i]));
        else
          missing.push_back(ids[i]);
      }
      if (!missing.empty()) throw not_found(missing);
      set_reply(200, several_ ? list : list.at(0));
    });
  }

  void put() override { change(Model::Check::replace); }
  void patch() override { change(Model::Check::patch); }

  void delete_() override {
    answer([&] {
      auto ids = url_ids();
      if (auto missing = queryset().destroy(ids); !missing.empty()) throw not_found(missing);
      set_status(204);
    });
  }

 private:
  void change(Model::Check mode) {
    answer([&] {
      auto ids = url_ids();
      if (several_) throw error(400, "PUT and PATCH take one id");
      auto fields = checked(body_json(), mode, ids[0]);
      auto record = queryset().update(ids[0], fields);
      if (!record) throw not_found(ids);
      set_reply(200, *record);
    });
  }

  std::vector<ItemId> url_ids() {
    const std::string_view text = get_url_arg("ids");
    several_ = text.find(',') != std::string_view::npos;
    std::vector<ItemId> ids;
    std::set<ItemId> seen;
    std::size_t start = 0;
    while (start <= text.size()) {
      auto end = std::min(text.find(',', start), text.size());
      auto piece = text.substr(start, end - start);
      ItemId id = 0;
      auto [ptr, ec] = std::from_chars(piece.data(), piece.data() + piece.size(), id);
      if (piece.empty() || ec != std::errc() || ptr != piece.data() + piece.size() || id <= 0 ||
          piece[0] == '+')
        throw error(404, "no " + model().name() + " with id '" + std::string(piece) + "'");
      // The same id twice is the same record once.
      if (seen.insert(id).second) ids.push_back(id);
      start = end + 1;
    }
    if (ids.size() > options().max_limit)
      throw error(400, "at most " + std::to_string(options().max_limit) + " ids at once");
    return ids;
  }

  ApiError not_found(const std::vector<ItemId>& missing) const {
    std::string text = "no " + model().name() + " with id ";
    for (std::size_t i = 0; i < missing.size(); ++i)
      text += (i ? ", " : "") + std::to_string(missing[i]);
    return {404, Json{{"error", text}, {"missing", missing}}};
  }

  bool several_ = false;
};

class CollectionHandler : public AutoApiHandler {
 public:
  using AutoApiHandler::AutoApiHandler;

  void get() override {
    answer([&] {
      const auto offset = count_argument("offset", 0, 0, 1'000'000'000'000);
      const auto limit = count_argument("limit", options().default_limit, 1, options().max_limit);
      auto page = queryset().read_page(offset, limit);
      set_header("X-Total-Count", std::to_string(page.total));
      if (offset + page.records.size() < page.total)
        set_header("Link", detail::cat("<", collection_url(offset + page.records.size(), limit),
                                       ">; rel=\"next\""));
      Json list = Json::array();
      for (auto& r : page.records) list.push_back(std::move(r));
      set_reply(200, list);
    });
  }

  // An object creates one record (201, Location: its URL); an array creates
  // several (201), all or none.
  void post() override {
    answer([&] {
      const Json body = body_json();
      std::vector<Record> records;
      if (body.is_array()) {
        if (body.empty()) throw error(400, "the array is empty: nothing to create");
        if (body.size() > options().max_limit)
          throw error(400, "at most " + std::to_string(options().max_limit) + " records at once");
        FieldErrors errors;
        for (std::size_t i = 0; i < body.size(); ++i)
          records.push_back(model().check(body[i], Model::Check::create, errors, {},
                                          detail::cat("[", std::to_string(i), "].")));
        if (!errors.empty()) throw invalid(errors);
      } else {
        records.push_back(checked(body, Model::Check::create));
      }
      auto created = queryset().create(records);
      if (body.is_array()) {
        Json list = Json::array();
        for (auto& r : created) list.push_back(std::move(r));
        set_reply(201, list);
      } else {
        set_header("Location", location(created.at(0)["id"].get<ItemId>()));
        set_reply(201, created.at(0));
      }
    });
  }

 private:
  std::size_t count_argument(const char* name, std::size_t fallback, std::size_t min,
                             std::size_t max) const {
    const std::string text = get_argument(name, "");
    if (text.empty()) return fallback;
    std::size_t v = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || ptr != text.data() + text.size() || v < min || v > max)
      throw error(400, std::string(name) + " must be a whole number from " + std::to_string(min) +
                           " to " + std::to_string(max));
    return v;
  }

  std::string collection_url(std::size_t offset, std::size_t limit) const {
    return collection() + "?offset=" + std::to_string(offset) + "&limit=" + std::to_string(limit);
  }
};

class SchemaHandler : public AutoApiHandler {
 public:
  using AutoApiHandler::AutoApiHandler;
  void get() override { set_reply(200, model().json_schema(), "application/schema+json"); }
};

// Brubeck's /manifest.json: the schema of every model register_api gave
// the app. Filled before run(), only read after.
struct Manifest {
  std::vector<Model> models;
};

class ManifestHandler : public ApiHandler {
 public:
  explicit ManifestHandler(std::shared_ptr<const Manifest> manifest)
      : manifest_(std::move(manifest)) {}
  void get() override {
    Json list = Json::array();
    for (const auto& m : manifest_->models) list.push_back(m.json_schema());
    set_header("Content-Type", "application/schema+json");
    set_body(list.dump());
  }
  Response render() override { return WebMessageHandler::render(); }

 private:
  std::shared_ptr<const Manifest> manifest_;
};

// RE2 reads these literally only when escaped.
std::string regex_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

std::shared_ptr<const AutoApi> make_api(std::shared_ptr<Queryset> queryset,
                                        const AutoApiOptions& options) {
  if (!queryset) throw std::invalid_argument("autoapi: no queryset");
  if (options.base.empty() || options.base.front() != '/' || options.base.back() != '/')
    throw std::invalid_argument("autoapi: base must start and end with '/'");
  if (options.default_limit == 0 || options.default_limit > options.max_limit)
    throw std::invalid_argument("autoapi: default_limit must be from 1 to max_limit");
  auto api = std::make_shared<AutoApi>();
  api->collection = options.base + queryset->model().name() + "/";
  api->queryset = std::move(queryset);
  api->options = options;
  return api;
}

// The routes, in the order they must be tried: "_schema" is no id.
struct Patterns {
  std::string schema, items, collection;
};
Patterns patterns_of(const AutoApi& api) {
  const std::string prefix = detail::cat("^", regex_escape(api.collection));
  return {prefix + "_schema/?$", prefix + "(?P<ids>[^/]+)/?$",
          prefix.substr(0, prefix.size() - 1) + "/?$"};
}

}  // namespace

std::vector<RouteSpec> autoapi_routes(std::shared_ptr<Queryset> queryset,
                                      const AutoApiOptions& options) {
  auto api = make_api(std::move(queryset), options);
  auto p = patterns_of(*api);
  std::vector<RouteSpec> routes;
  routes.push_back(class_route<SchemaHandler>(p.schema, api));
  routes.push_back(class_route<ItemsHandler>(p.items, api));
  routes.push_back(class_route<CollectionHandler>(p.collection, api));
  return routes;
}

void register_api(App& app, std::shared_ptr<Queryset> queryset, const AutoApiOptions& options) {
  auto api = make_api(std::move(queryset), options);
  auto* manifest = app.services().find<Manifest>();
  if (manifest == nullptr) {
    auto made = std::make_shared<Manifest>();
    manifest = made.get();
    app.provide(made);
    app.route<ManifestHandler>(detail::cat("^", regex_escape(options.base), "manifest\\.json$"),
                               std::shared_ptr<const Manifest>(made));
  }
  manifest->models.push_back(api->queryset->model());
  auto p = patterns_of(*api);
  app.route<SchemaHandler>(p.schema, api);
  app.route<ItemsHandler>(p.items, api);
  app.route<CollectionHandler>(p.collection, api);
}

}  // namespace brubeck

#include "brubeck/apps/templates.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include <mustache.hpp>
#include <nlohmann/json.hpp>

#include "brubeck/actors/app.hpp"
#include "brubeck/handlers/handler.hpp"
#include "brubeck/pipeline/log_limiter.hpp"
#include "brubeck/pipeline/offload.hpp"

namespace brubeck {

namespace fs = std::filesystem;
namespace mu = kainjow::mustache;

namespace {

constexpr std::string_view kExtension = ".mustache";

// One file as last seen: a changed size or time means read it again.
struct Stamp {
  std::string name;
  fs::file_time_type mtime;
  std::uintmax_t size = 0;
  bool operator==(const Stamp&) const = default;
};

struct Compiled {
  std::string file;  // relative to the folder, for messages
  std::string source;
  // Null when it does not compile; `error` then says why and where.
  std::unique_ptr<mu::mustache> compiled;
  std::string error;
  // The source as kainjow wants a partial: it compiles a partial's text
  // where it is included (its design). build() inlines partials instead
  // where it can, so this serves recursive templates only.
  mu::data as_partial;
};

// One loaded set; never changed once built, so shards read it without a lock.
struct Snapshot {
  std::map<std::string, Compiled, std::less<>> templates;
  std::vector<Stamp> stamps;
};

// "Unclosed tag at 57" -> "3:12: Unclosed tag": kainjow reports a byte
// offset into the source; people look for lines and columns.
std::string with_position(const std::string& file, const std::string& source,
                          const std::string& message) {
  auto at = message.rfind(" at ");
  std::size_t offset = 0;
  if (at != std::string::npos) {
    const char* first = message.data() + at + 4;
    const char* last = message.data() + message.size();
    auto [end, ec] = std::from_chars(first, last, offset);
    if (ec != std::errc() || end != last) at = std::string::npos;
  }
  if (at == std::string::npos) return file + ": " + message;
  offset = std::min(offset, source.size());
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < offset; ++i) {
    if (source[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " +
         message.substr(0, at);
}

std::vector<Stamp> scan(const std::string& folder) {
  std::vector<Stamp> out;
  const fs::path root(folder);
  for (auto it =
           fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    const auto& path = it->path();
    if (!it->is_regular_file() || path.extension() != kExtension) continue;
    auto relative = path.lexically_relative(root);
    relative.replace_extension();
    out.push_back({relative.generic_string(), it->last_write_time(), it->file_size()});
  }
  std::sort(out.begin(), out.end(), [](const Stamp& a, const Stamp& b) { return a.name < b.name; });
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TemplateError("cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct PartialTag {
  std::string name;
  std::size_t offset;
  std::size_t length;
};

// The partials a source includes, where (default delimiters: a template
// that changes them hides its later partials from this check, and kainjow
// then renders a missing one as nothing).
std::vector<PartialTag> partials_of(const std::string& source) {
  static const std::regex tag(R"(\{\{\s*>\s*([^\s}]+)\s*\}\})");
  std::vector<PartialTag> out;
  for (auto it = std::sregex_iterator(source.begin(), source.end(), tag);
       it != std::sregex_iterator(); ++it)
    out.push_back({(*it)[1].str(), static_cast<std::size_t>(it->position(0)),
                   static_cast<std::size_t>(it->length(0))});
  return out;
}

// `name`'s source with every partial tag replaced by the partial's own
// (expanded) source, which kainjow renders the same way: a partial shares
// its includer's context and line. Without it kainjow compiles a partial's
// text at each inclusion (about 4 µs each, bench/templates.cpp). Nothing
// for a template that includes itself (recursion needs kainjow's way) or
// changes delimiters.
std::optional<std::string> expanded(const Snapshot& snap, const std::string& name,
                                    std::vector<std::string>& stack) {
  const auto& source = snap.templates.at(name).source;
  if (source.find("{{=") != std::string::npos ||
      std::find(stack.begin(), stack.end(), name) != stack.end())
    return std::nullopt;
  stack.push_back(name);
  std::string out;
  std::size_t done = 0;
  for (const auto& tag : partials_of(source)) {
    auto inner = expanded(snap, tag.name, stack);
    if (!inner) return std::nullopt;
    out.append(source, done, tag.offset - done).append(*inner);
    done = tag.offset + tag.length;
  }
  out.append(source, done);
  stack.pop_back();
  return out;
}

std::shared_ptr<const Snapshot> build(const std::string& folder, std::vector<Stamp> stamps) {
  auto snap = std::make_shared<Snapshot>();
  for (const auto& stamp : stamps) {
    Compiled c;
    c.file = stamp.name + std::string(kExtension);
    c.source = read_file(fs::path(folder) / c.file);
    auto compiled = std::make_unique<mu::mustache>(c.source);
    if (compiled->is_valid())
      c.compiled = std::move(compiled);
    else
      c.error = with_position(c.file, c.source, compiled->error_message());
    c.as_partial = mu::data(c.source);
    snap->templates.emplace(stamp.name, std::move(c));
  }
  // A missing partial is the including template's error; one that does not
  // compile breaks every template including it, however deep: kainjow
  // would otherwise record the error inside the shared compiled template.
  for (auto& [name, c] : snap->templates) {
    if (!c.compiled) continue;
    for (const auto& tag : partials_of(c.source)) {
      if (snap->templates.count(tag.name) != 0) continue;
      c.compiled.reset();
      c.error = with_position(c.file, c.source,
                              "no partial '" + tag.name + "' at " + std::to_string(tag.offset));
      break;
    }
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (auto& [name, c] : snap->templates) {
      if (!c.compiled) continue;
      for (const auto& tag : partials_of(c.source)) {
        const auto& included = snap->templates.at(tag.name);
        if (included.compiled) continue;
        c.compiled.reset();
        c.error = with_position(
            c.file, c.source,
            "partial '" + tag.name + "' does not compile at " + std::to_string(tag.offset));
        changed = true;
        break;
      }
    }
  }
  // Partials inlined where they can be (the includers compiled again).
  std::map<std::string, std::unique_ptr<mu::mustache>, std::less<>> inlined;
  for (const auto& [name, c] : snap->templates) {
    if (!c.compiled || partials_of(c.source).empty()) continue;
    std::vector<std::string> stack;
    if (auto text = expanded(*snap, name, stack)) {
      auto compiled = std::make_unique<mu::mustache>(*text);
      if (compiled->is_valid()) inlined.emplace(name, std::move(compiled));
    }
  }
  for (auto& [name, compiled] : inlined) snap->templates.at(name).compiled = std::move(compiled);
  snap->stamps = std::move(stamps);
  return snap;
}

// The JSON context as kainjow's data. Numbers print as JSON writes them;
// null is false (a section it opens is skipped).
mu::data to_data(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      mu::data out(mu::data::type::object);
      for (const auto& [k, v] : j.items()) out[k] = to_data(v);
      return out;
    }
    case nlohmann::json::value_t::array: {
      mu::data out(mu::data::type::list);
      for (const auto& v : j) out.push_back(to_data(v));
      return out;
    }
    case nlohmann::json::value_t::string:
      return mu::data(j.get_ref<const std::string&>());
    case nlohmann::json::value_t::boolean:
      return mu::data(j.get<bool>());
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      return mu::data(false);
    default:
      return mu::data(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
}

// kainjow's context, with partials taken from the snapshot instead of from
// the data (where a partial's name would clash with the page's own keys).
class RenderContext : public mu::context<std::string> {
 public:
  RenderContext(const mu::data* data, const Snapshot& snap)
      : mu::context<std::string>(data), snap_(snap) {}
  const mu::data* get_partial(const std::string& name) const override {
    auto it = snap_.templates.find(name);
    return it == snap_.templates.end() ? nullptr : &it->second.as_partial;
  }

 private:
  const Snapshot& snap_;
};

bool on_a_shard() noexcept {
  auto* reactor = Reactor::current();
  auto* hub = FiberHub::current();
  return reactor != nullptr && hub != nullptr && reactor->hub() == hub;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct Templates::State {
  std::string folder;
  TemplateOptions options;
  // Written only in reload mode, under `mutex`; without reload, set once
  // before any reader and then only read.
  std::shared_ptr<const Snapshot> snapshot;
  mutable std::mutex mutex;
  std::mutex reload_mutex;  // one reload at a time
  std::atomic<std::int64_t> next_check_ns{0};
  std::atomic<std::uint64_t> generation{0};
  std::mutex log_mutex;
  detail::LogLimiter log_limiter;

  std::shared_ptr<const Snapshot> current() {
    if (!options.reload) return snapshot;
    std::lock_guard lock(mutex);
    return snapshot;
  }

  bool reload_if_changed() {
    std::lock_guard serial(reload_mutex);
    std::vector<Stamp> stamps;
    try {
      stamps = scan(folder);
    } catch (const std::exception& e) {
      spdlog::warn("templates: cannot read {}: {} (keeping the templates loaded)", folder,
                   e.what());
      return false;
    }
    if (stamps == current()->stamps) return false;
    std::shared_ptr<const Snapshot> fresh;
    try {
      fresh = build(folder, std::move(stamps));
    } catch (const std::exception& e) {
      // A file removed between the scan and the read: the next look sees it.
      spdlog::warn("templates: reload of {} failed: {}", folder, e.what());
      return false;
    }
    std::size_t broken = 0;
    for (const auto& [name, c] : fresh->templates)
      if (!c.compiled) {
        ++broken;
        spdlog::warn("templates: {}", c.error);
      }
    {
      std::lock_guard lock(mutex);
      snapshot = std::move(fresh);
    }
    generation.fetch_add(1);
    spdlog::info("templates: {} read again ({} do not compile)", folder, broken);
    return true;
  }

  // In reload mode, at most once per check_interval: look at the folder.
  void maybe_reload(const std::shared_ptr<State>& self) {
    auto due = next_check_ns.load(std::memory_order_relaxed);
    auto now = now_ns();
    if (now < due) return;
    auto next =
        now + std::chrono::duration_cast<std::chrono::nanoseconds>(options.check_interval).count();
    if (!next_check_ns.compare_exchange_strong(due, next)) return;  // another thread looks
    if (on_a_shard())
      offload([self] { self->reload_if_changed(); });
    else
      reload_if_changed();
  }

  [[noreturn]] void fail(const std::string& message) {
    {
      std::lock_guard lock(log_mutex);
      log_limiter.log(spdlog::level::err, "templates: {}", message);
    }
    throw TemplateError(message);
  }
};

Templates::Templates(std::shared_ptr<State> state) : state_(std::move(state)) {}
Templates::~Templates() = default;

std::shared_ptr<Templates> Templates::load(const std::string& folder, TemplateOptions options) {
  auto state = std::make_shared<State>();
  state->folder = folder;
  state->options = options;
  std::shared_ptr<const Snapshot> snap;
  try {
    if (!fs::is_directory(folder)) throw TemplateError("templates: no folder " + folder);
    snap = build(folder, scan(folder));
  } catch (const fs::filesystem_error& e) {
    throw TemplateError(std::string("templates: ") + e.what());
  }
  std::string errors;
  for (const auto& [name, c] : snap->templates)
    if (!c.compiled) errors += "\n  " + c.error;
  if (!errors.empty())
    throw TemplateError("templates in " + folder + " that do not compile:" + errors);
  state->snapshot = std::move(snap);
  state->generation.store(1);
  state->next_check_ns.store(
      now_ns() +
      std::chrono::duration_cast<std::chrono::nanoseconds>(options.check_interval).count());
  return std::shared_ptr<Templates>(new Templates(std::move(state)));
}

std::string Templates::render(std::string_view name, const nlohmann::json& context) const {
  if (state_->options.reload) state_->maybe_reload(state_);
  auto snap = state_->current();
  auto it = snap->templates.find(name);
  if (it == snap->templates.end())
    state_->fail("no template '" + std::string(name) + "' in " + state_->folder);
  const auto& c = it->second;
  if (!c.compiled) state_->fail(c.error);
  auto data = to_data(context);
  RenderContext ctx(&data, *snap);
  std::ostringstream out;
  // Rendering leaves the shared compiled template as it was: it writes only
  // its error message, which needs a lambda in the data (there are none) or
  // a partial that does not compile (build() broke its includers instead).
  c.compiled->render(ctx, out);
  return std::move(out).str();
}

bool Templates::has(std::string_view name) const {
  auto snap = state_->current();
  return snap->templates.find(name) != snap->templates.end();
}

std::vector<std::string> Templates::names() const {
  std::vector<std::string> out;
  for (const auto& [name, c] : state_->current()->templates) out.push_back(name);
  return out;
}

const std::string& Templates::folder() const noexcept { return state_->folder; }

bool Templates::reload_if_changed() const { return state_->reload_if_changed(); }

std::uint64_t Templates::generation() const noexcept { return state_->generation.load(); }

void render_error_page(const Templates& templates, WebMessageHandler& handler, int status) {
  const std::string name = "errors/" + std::to_string(status);
  if (templates.has(name)) {
    nlohmann::json context = {{"status", status},
                              {"reason", std::string(reason_phrase(status))},
                              {"message", std::string(handler.status_msg())},
                              {"path", std::string(handler.request().path())}};
    try {
      handler.set_status(status);
      handler.set_body(templates.render(name, context));
      handler.set_header("Content-Type", "text/html; charset=utf-8");
      return;
    } catch (const TemplateError&) {
      // Logged by render(); the built-in page still tells the client.
    }
  }
  handler.MessageHandler::write_error(status);
}

std::shared_ptr<Templates> use_templates(App& app) {
  const auto& config = app.config();
  if (config.templates.empty()) return nullptr;
  std::shared_ptr<Templates> templates;
  try {
    templates = Templates::load(config.templates, {.reload = config.templates_reload});
  } catch (const TemplateError& e) {
    spdlog::error("brubeck: cannot start: {}", e.what());
    std::exit(2);
  }
  spdlog::info("templates: {} loaded from {}{}", templates->names().size(), config.templates,
               config.templates_reload ? " (read again on change)" : "");
  app.provide(templates);
  app.error_page([t = templates](WebMessageHandler& handler, int status) {
    render_error_page(*t, handler, status);
  });
  return templates;
}

}  // namespace brubeck

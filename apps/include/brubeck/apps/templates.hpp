// Mustache templates (kainjow's mustache, from Debian) for pages. A folder
// is read once per process: every `*.mustache` file under it, named by its
// path relative to the folder without the extension ("index",
// "errors/404"). Every template is compiled at load, and a template that
// does not compile stops the load with one error naming each such file and
// the line and column. `{{x}}` is HTML-escaped, `{{{x}}}` is not, and
// `{{> name}}` includes another template of the same folder.
//
// The compiled set is an immutable snapshot that every shard reads at once.
// In development (`reload`), the folder is looked at again at most once per
// check_interval and a changed set replaces the snapshot as a whole: a
// request renders either the old set or the new one, never a mix. A template
// changed into one that does not compile is kept as broken: rendering it (or
// a template including it) fails, naming the file and position, until it is
// fixed.
//
// Handlers reach the set through App::provide: `brubeck::use_templates(app)`
// loads the folder of the `templates` setting, provides it and installs the
// error pages (`errors/404.mustache`, ...); PageHandler::render(name,
// context) renders into the reply.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace brubeck {

class App;
class WebMessageHandler;

// A template that is missing or does not compile; what() names it and,
// for a syntax error, the file, line and column.
class TemplateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TemplateOptions {
  // Read the folder again when a file changed, added or removed
  // (development; the check costs a stat() per file).
  bool reload = false;
  // How long a set is trusted before the folder is looked at again.
  std::chrono::milliseconds check_interval{1000};
};

class Templates {
 public:
  // Loads and compiles every template under `folder`. Throws TemplateError
  // listing every template that does not compile (or includes a partial
  // that is missing), and for a folder that cannot be read.
  static std::shared_ptr<Templates> load(const std::string& folder, TemplateOptions options = {});

  ~Templates();
  Templates(const Templates&) = delete;
  Templates& operator=(const Templates&) = delete;

  // Any thread. The template `name` rendered with `context`: objects are
  // looked up by key, arrays are lists (a section repeats per item), false,
  // null and [] skip a section, numbers print as JSON writes them. Throws
  // TemplateError for a missing or broken template, after one log line
  // (rate-limited: a broken page under load does not flood the log).
  std::string render(std::string_view name, const nlohmann::json& context) const;

  // Any thread. True when `name` exists (compiled or not).
  bool has(std::string_view name) const;
  // The names of the current set, sorted.
  std::vector<std::string> names() const;
  const std::string& folder() const noexcept;

  // Looks at the folder now and swaps in a new set if anything changed;
  // true when it did. render() calls it by itself in reload mode (from a
  // shard, on the offload pool: it reads files).
  bool reload_if_changed() const;
  // How many sets were loaded so far (1 after load()).
  std::uint64_t generation() const noexcept;

  struct State;

 private:
  explicit Templates(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

// For main(): loads the folder of the app's `templates` setting (with
// `templates_reload`), provides it to every handler (service<Templates>())
// and installs it as the app's error page (template_error_pages). Null when
// the setting is empty. A template that does not compile is a start-up
// error: logged with every broken file, and the process exits with status 2,
// as for a bad setting.
std::shared_ptr<Templates> use_templates(App& app);

// Fills an error reply from `errors/<status>` when that template exists,
// with {status, reason, message, path}; else the built-in short text. For
// App::error_page.
void render_error_page(const Templates& templates, WebMessageHandler& handler, int status);

}  // namespace brubeck

// What an application hands every handler besides the request: its template
// set, session store, user store, AutoAPI stores. One object per type, given
// to App before run() (`app.provide(templates)`) and only read after, by
// every shard at once: a service shared this way must itself be safe to use
// from several threads (or hand out per-shard state). The layer that defines
// a service type (apps/) owns what it means; this is only the registry, so
// the handler layer stays below it.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <typeindex>
#include <typeinfo>
#include <utility>
#include <vector>

namespace brubeck {

class Services {
 public:
  // Adds or replaces the service of type T.
  template <class T>
  void provide(std::shared_ptr<T> service) {
    const std::type_index key(typeid(T));
    for (auto& [k, v] : entries_)
      if (k == key) {
        v = std::move(service);
        return;
      }
    entries_.emplace_back(key, std::move(service));
  }

  // The service of type T, or null.
  template <class T>
  T* find() const noexcept {
    const std::type_index key(typeid(T));
    for (const auto& [k, v] : entries_)
      if (k == key) return static_cast<T*>(v.get());
    return nullptr;
  }

  // The service of type T; std::logic_error when the app provided none (a
  // mistake in the app's set-up, so a 500 and a log line).
  template <class T>
  T& get() const {
    if (T* found = find<T>()) return *found;
    throw std::logic_error(std::string("no service of type ") + typeid(T).name() +
                           ": give one to App::provide before run()");
  }

 private:
  // A handful of entries: a scan beats hashing.
  std::vector<std::pair<std::type_index, std::shared_ptr<void>>> entries_;
};

}  // namespace brubeck

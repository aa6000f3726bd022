// Builds Requests for handler tests without a Mongrel2 frame on the wire.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <utility>

#include "brubeck/handlers/request.hpp"

namespace brubeck::testing {

inline Request make_request(std::string method, std::string path, std::string query = {},
                            std::initializer_list<std::pair<std::string, std::string>> extra = {},
                            std::string version = "HTTP/1.1", std::string body = {}) {
  auto storage = std::make_shared<std::string>(std::move(body));
  Frame f;
  f.sender = "test-sender";
  f.conn_id = "42";
  f.path = std::string_view();
  f.body = *storage;
  for (const auto& [k, v] : extra) f.headers.push_back({k, v});
  f.headers.push_back({"METHOD", std::move(method)});
  f.headers.push_back({"VERSION", std::move(version)});
  f.headers.push_back({"PATH", path});
  f.headers.push_back({"URI", query.empty() ? path : path + "?" + query});
  if (!query.empty()) f.headers.push_back({"QUERY", std::move(query)});
  auto owned_path = std::make_shared<std::pair<std::string, std::shared_ptr<std::string>>>(
      std::move(path), storage);
  f.path = owned_path->first;
  return Request(std::move(f), owned_path);
}

}  // namespace brubeck::testing

// Builds Requests for handler tests without a Mongrel2 frame on the wire.
#pragma once

#include <deque>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>

#include "brubeck/handlers/request.hpp"

namespace brubeck::testing {

inline Request make_request(std::string method, std::string path, std::string query = {},
                            std::initializer_list<std::pair<std::string, std::string>> extra = {},
                            std::string version = "HTTP/1.1", std::string body = {}) {
  // A Frame only views its bytes; this owns them, as a frame's message would.
  // A deque never moves what it holds, so the views stay valid.
  auto texts = std::make_shared<std::deque<std::string>>();
  auto keep = [&](std::string s) -> std::string_view { return texts->emplace_back(std::move(s)); };
  Frame f;
  f.sender = "test-sender";
  f.conn_id = "42";
  f.body = keep(std::move(body));
  for (const auto& [k, v] : extra) f.headers.push_back({keep(k), keep(v)});
  f.headers.push_back({"METHOD", keep(std::move(method))});
  f.headers.push_back({"VERSION", keep(std::move(version))});
  f.headers.push_back({"PATH", keep(path)});
  f.headers.push_back({"URI", keep(query.empty() ? path : path + "?" + query)});
  if (!query.empty()) f.headers.push_back({"QUERY", keep(std::move(query))});
  f.path = keep(std::move(path));
  return Request(std::move(f), texts);
}

}  // namespace brubeck::testing

// The request every load test sends: a browser's GET as Mongrel2 1.12.2
// frames it (lower-case browser headers, then its own upper-case keys), so
// the load generator and the in-process benchmark decode the same bytes.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace brubeck::bench {

inline std::string netstring(std::string_view s) {
  return std::to_string(s.size()) + ":" + std::string(s) + ",";
}

// The headers part of a frame, "LEN:{...}," (protocol='json', Mongrel2's
// default) or "LEN:...}" (protocol='tnetstring'), ~500 bytes either way.
inline std::string captured_headers(const std::string& path, const std::string& query,
                                    bool tnetstring) {
  const std::string uri = path + (query.empty() ? "" : "?" + query);
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"PATH", path},
      {"x-forwarded-for", "127.0.0.1"},
      {"accept-language", "en-US,en;q=0.9"},
      {"accept-encoding", "gzip, deflate, br"},
      {"accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
      {"connection", "keep-alive"},
      {"user-agent",
       "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
       "Chrome/120.0.0.0 Safari/537.36"},
      {"host", "127.0.0.1:6767"},
      {"METHOD", "GET"},
      {"VERSION", "HTTP/1.1"},
      {"URI", uri},
      {"QUERY", query},
      {"PATTERN", "/"},
      {"URL_SCHEME", "http"},
      {"REMOTE_ADDR", "127.0.0.1"}};
  std::string encoded;
  if (tnetstring) {
    for (const auto& [k, v] : headers) encoded += netstring(k) + netstring(v);
    return std::to_string(encoded.size()) + ":" + encoded + "}";
  }
  // No value above carries a character JSON would escape.
  for (const auto& [k, v] : headers)
    encoded += (encoded.empty() ? "{\"" : ",\"") + k + "\":\"" + v + "\"";
  return netstring(encoded + "}");
}

}  // namespace brubeck::bench

// A pretend browser for handler tests: keeps the cookies replies set, sends
// them back, and runs each request through dispatch on a fiber of a real
// reactor (as a shard does), from one client address.
#pragma once

#include <brubeck/handlers/dispatch.hpp>

#include <map>
#include <string>

#include "handlers/test_support.hpp"
#include "support/fiber_runner.hpp"

namespace brubeck::testing {

// The first header `name` of a reply ("" when none).
inline std::string header_of(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (iequals(k, name)) return v;
  return {};
}

struct Browser {
  Browser(const RouteTable& r, const HandlerSettings& s, std::string addr = "10.0.0.1")
      : routes(r), settings(s), address(std::move(addr)) {}

  const RouteTable& routes;
  const HandlerSettings& settings;
  std::string address;
  std::map<std::string, std::string> cookies;

  // `body` is sent as a form; `header` is one extra header ("" for none).
  Response request(const std::string& method, const std::string& path,
                   const std::string& query = {}, const std::string& body = {},
                   std::pair<std::string, std::string> header = {"x-none", "-"}) {
    std::string cookie_header;
    for (const auto& [k, v] : cookies) {
      if (!cookie_header.empty()) cookie_header += "; ";
      cookie_header += k + "=" + v;
    }
    Response out;
    run_fiber([&] {
      auto req = make_request(method, path, query,
                              {{"cookie", cookie_header},
                               {"content-type", "application/x-www-form-urlencoded"},
                               header,
                               {"REMOTE_ADDR", address}},
                              "HTTP/1.1", body);
      out = dispatch(routes, req, settings).response;
    });
    for (const auto& [k, v] : out.headers) {
      if (k != "Set-Cookie") continue;
      auto eq = v.find('='), semi = v.find(';');
      auto name = v.substr(0, eq), value = v.substr(eq + 1, semi - eq - 1);
      if (v.find("Max-Age=0") != std::string::npos)
        cookies.erase(name);
      else
        cookies[name] = value;
    }
    return out;
  }
  Response get(const std::string& path, const std::string& query = {}) {
    return request("GET", path, query);
  }
  // A form POST carrying the page's CSRF token, as a browser submitting a
  // form it was served would.
  Response post_form(const std::string& path, const std::string& body) {
    return request("POST", path, {}, body + "&_xsrf=" + token());
  }
  // What xsrf_form_html() would hold: the cookie (made on first need).
  std::string token() {
    if (!cookies.contains("_xsrf")) cookies["_xsrf"] = new_xsrf_secret();
    return cookies["_xsrf"];
  }
};

}  // namespace brubeck::testing

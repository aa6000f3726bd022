// An HTTP client for handler code that suspends the calling fiber, never the
// shard: each shard has one libcurl multi handle whose sockets live in the
// shard's own epoll loop, so many requests from many fibers share one thread
// and one connection cache.
//
// Errors: a refused connection or an unresolvable host throws Unavailable; a
// passed deadline Timeout (DeadlineExceeded for the request's own deadline);
// a body over max_body_bytes, or any other failure, std::runtime_error. An
// HTTP error status is not an exception: it is in the response.
//
// Without any deadline (neither the call's nor the fiber's) a request may wait
// as long as the server lets it.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "brubeck/pipeline/errors.hpp"
#include "brubeck/pipeline/fiber_hub.hpp"

namespace brubeck {

class Reactor;

struct HttpClientResponse {
  long status = 0;
  // In the order received; a repeated header appears once per occurrence.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first header of that name, case-insensitively; "" when absent.
  std::string header(std::string_view name) const;
};

struct HttpClientRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // A larger response fails rather than holding the shard's memory hostage.
  std::size_t max_body_bytes = 16 << 20;
};

namespace detail {
struct HttpCore;
}

class HttpClient {
 public:
  using Deadline = std::optional<Clock::time_point>;

  // The client of the reactor running on this thread, made on first use.
  // Must be called from a fiber of a running reactor (a shard).
  static HttpClient& for_this_shard();

  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // From a fiber of this client's reactor.
  HttpClientResponse request(const HttpClientRequest& req, Deadline deadline = {});
  HttpClientResponse get(const std::string& url, Deadline deadline = {});
  HttpClientResponse post(const std::string& url, std::string body, std::string content_type,
                          Deadline deadline = {});

 private:
  explicit HttpClient(Reactor& reactor);

  // Shared with the request fibers and the timer fiber, so whichever of them
  // ends last (a hub unwinding its fibers after the reactor is gone) frees it.
  std::shared_ptr<detail::HttpCore> core_;
};

}  // namespace brubeck

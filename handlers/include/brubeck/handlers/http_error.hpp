// An exception that answers the request with an HTTP status: thrown by
// handlers (`throw HttpError(403)`) and by the framework for bad input (a
// malformed JSON body is 400, an oversized upload 413). The reply goes
// through the handler's write_error(), like every other error reply.
#pragma once

#include <stdexcept>
#include <string>

namespace brubeck {

class HttpError : public std::runtime_error {
 public:
  explicit HttpError(int status, const std::string& detail = {})
      : std::runtime_error(detail.empty() ? "HTTP " + std::to_string(status) : detail),
        status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

}  // namespace brubeck

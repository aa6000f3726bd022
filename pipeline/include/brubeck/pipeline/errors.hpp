// The exceptions a wait can end in, shared by every layer that waits: the
// hub, file descriptors, offload, actors and the drivers. Dispatch maps them
// to HTTP statuses (Timeout → 504, Unavailable → 503), so a handler that lets
// them escape still answers properly.
#pragma once

#include <stdexcept>
#include <string>

namespace brubeck {

// An operation's own time limit passed (an ask, a query, an HTTP call).
struct Timeout : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The request's deadline passed while its fiber waited. Every wait below a
// handler ends in this once the deadline is gone, so a handler cannot linger.
struct DeadlineExceeded : Timeout {
  DeadlineExceeded() : Timeout("request deadline exceeded") {}
};

// A server the handler depends on is down or refused the connection.
struct Unavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace brubeck

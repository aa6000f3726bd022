// Where a shard's replies go (its PUB socket to Mongrel2), for replies that
// do not fit "one request, one response, now": a reply another fiber
// finishes later (long polling), a reply streamed in chunks, and one message
// delivered to many connections at once.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "brubeck/handlers/response.hpp"

namespace brubeck {

class ReplyChannel {
 public:
  virtual ~ReplyChannel() = default;
  // Sends raw bytes to every listed connection of `sender` (Mongrel2's
  // server uuid), at most 100 ids per frame. Empty bytes close them.
  virtual void send(std::string_view sender, std::span<const std::string_view> conn_ids,
                    std::string_view bytes) = 0;
};

// A request whose reply was left for later. Move it to whoever will answer
// (another fiber of the same shard); finish() sends the reply. Dropped
// unfinished, it answers 500, so the client is never left hanging.
class DeferredReply {
 public:
  DeferredReply(ReplyChannel& channel, std::string sender, std::string conn_id, bool close,
                bool head);
  DeferredReply(DeferredReply&&) noexcept;
  DeferredReply& operator=(DeferredReply&&) noexcept;
  ~DeferredReply();

  void finish(Response response);
  bool finished() const noexcept { return channel_ == nullptr; }
  const std::string& conn_id() const noexcept { return conn_id_; }

 private:
  ReplyChannel* channel_;
  std::string sender_;
  std::string conn_id_;
  bool close_;
  bool head_;
};

}  // namespace brubeck

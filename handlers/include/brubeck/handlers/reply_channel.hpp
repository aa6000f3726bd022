// Where a shard's replies go (its PUB socket to Mongrel2), for replies that
// do not fit "one request, one response, now": a reply another fiber
// finishes later (long polling), a reply streamed in chunks, and one message
// delivered to many connections at once.
#pragma once

#include <cstdint>
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
  // Part of one request's reply, which must reach its connection after the
  // replies to the requests before it there (HTTP/1.1 pipelining): `slot` is
  // Request::reply_slot(), `last` marks its final bytes (the close frame
  // when it closes). By default, sent at once.
  virtual void send_reply(std::string_view sender, std::string_view conn_id, std::uint64_t slot,
                          std::string_view bytes, bool last) {
    send(sender, std::span<const std::string_view>(&conn_id, 1), bytes);
  }
};

// A request whose reply was left for later. Move it to whoever will answer
// (another fiber of the same shard); finish() sends the reply. Dropped
// unfinished, it answers 500, so the client is never left hanging.
class DeferredReply {
 public:
  DeferredReply(ReplyChannel& channel, std::string sender, std::string conn_id, std::uint64_t slot,
                bool close, bool head);
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
  std::uint64_t slot_;
  bool close_;
  bool head_;
};

}  // namespace brubeck

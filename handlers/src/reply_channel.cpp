#include "brubeck/handlers/reply_channel.hpp"

#include <spdlog/spdlog.h>

namespace brubeck {

DeferredReply::DeferredReply(ReplyChannel& channel, std::string sender, std::string conn_id,
                             std::uint64_t slot, bool close, bool head)
    : channel_(&channel),
      sender_(std::move(sender)),
      conn_id_(std::move(conn_id)),
      slot_(slot),
      close_(close),
      head_(head) {}

DeferredReply::DeferredReply(DeferredReply&& o) noexcept
    : channel_(std::exchange(o.channel_, nullptr)),
      sender_(std::move(o.sender_)),
      conn_id_(std::move(o.conn_id_)),
      slot_(o.slot_),
      close_(o.close_),
      head_(o.head_) {}

DeferredReply& DeferredReply::operator=(DeferredReply&& o) noexcept {
  if (this != &o) {
    if (channel_ != nullptr) {
      try {
        finish(error_response(500, "reply abandoned"));
      } catch (...) {
      }
    }
    channel_ = std::exchange(o.channel_, nullptr);
    sender_ = std::move(o.sender_);
    conn_id_ = std::move(o.conn_id_);
    slot_ = o.slot_;
    close_ = o.close_;
    head_ = o.head_;
  }
  return *this;
}

DeferredReply::~DeferredReply() {
  if (channel_ == nullptr) return;
  spdlog::warn("conn {}: a deferred reply was dropped unfinished; answering 500", conn_id_);
  try {
    finish(error_response(500, "reply abandoned"));
  } catch (...) {
  }
}

void DeferredReply::finish(Response response) {
  if (channel_ == nullptr) throw std::logic_error("deferred reply already finished");
  auto* channel = std::exchange(channel_, nullptr);
  if (close_) response.set_header("Connection", "close");
  std::string bytes;
  response.serialize(bytes, !head_);
  channel->send_reply(sender_, conn_id_, slot_, bytes, !close_);
  if (close_) channel->send_reply(sender_, conn_id_, slot_, {}, true);
}

}  // namespace brubeck

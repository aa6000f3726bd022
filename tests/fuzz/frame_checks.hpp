// Properties every decoded Mongrel2 frame must have, shared by the JSON and
// tnetstring frame targets (both formats can appear in either one's inputs).
#pragma once

#include <simdjson.h>

#include <memory>
#include <string>
#include <string_view>

#include "brubeck/pipeline/codec.hpp"
#include "fuzz_common.hpp"

namespace brubeck::fuzz {

inline std::string netstring(std::string_view payload, char tag = ',') {
  return std::to_string(payload.size()) + ":" + std::string(payload) + tag;
}

inline std::string json_string(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (b < 0x20) {
      out += "\\u00";
      out += kHex[b >> 4];
      out += kHex[b & 0xf];
    } else {
      out += c;
    }
  }
  return out + '"';
}

// As Mongrel2 1.12 writes a header into its JSON: only quotes and
// backslashes escaped, every other byte raw.
inline std::string mongrel2_json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

inline bool is_utf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

inline bool same_headers(const Frame& a, const Frame& b) {
  if (a.headers.size() != b.headers.size()) return false;
  for (std::size_t i = 0; i < a.headers.size(); ++i)
    if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value)
      return false;
  return true;
}

inline bool same_frame(const Frame& a, const Frame& b) {
  return a.sender == b.sender && a.conn_id == b.conn_id && a.path == b.path && a.body == b.body &&
         a.kind == b.kind && a.upload_start == b.upload_start && a.upload_done == b.upload_done &&
         same_headers(a, b);
}

// Decodes `bytes` (an exact-size buffer) with the long-lived decoder, as a
// shard does, and checks the outcome.
class FrameChecker {
 public:
  FrameChecker() : reused_(std::make_unique<FrameDecoder>()) {}

  DecodeError check(std::string_view bytes) {
    Frame frame;
    const DecodeError e = reused_->decode(bytes, frame);

    // A fresh decoder must agree: nothing of an earlier frame (the scratch
    // buffer, the parser) may leak into this one.
    {
      FrameDecoder fresh;
      Frame again;
      FUZZ_CHECK(fresh.decode(bytes, again) == e);
      FUZZ_CHECK(same_frame(frame, again));
    }

    const auto key = peek_route_key(bytes);
    // A frame with a readable sender and conn id always gets an answer (a
    // reply or a close): only one without them is dropped.
    const FrameAction action = frame_action(bytes, e, frame);
    FUZZ_CHECK((action == FrameAction::drop) == !key);
    if (e != DecodeError::ok) {
      FUZZ_CHECK(action == FrameAction::reject || action == FrameAction::drop);
      // A failed decode leaves the frame empty.
      FUZZ_CHECK(frame.sender.empty() && frame.conn_id.empty() && frame.path.empty() &&
                 frame.body.empty() && frame.headers.empty() && frame.upload_start.empty() &&
                 frame.upload_done.empty() && frame.kind == FrameKind::http);
      // Errors about the sender or the conn id are exactly the frames the
      // router cannot peek at.
      if (e == DecodeError::bad_sender || e == DecodeError::bad_conn_id) FUZZ_CHECK(!key);
      return e;
    }

    FUZZ_CHECK(within(frame.sender, bytes) && within(frame.conn_id, bytes) &&
               within(frame.path, bytes) && within(frame.body, bytes));
    FUZZ_CHECK(key && key->sender == frame.sender && key->conn_id == frame.conn_id);
    FUZZ_CHECK(!frame.sender.empty() && frame.sender.size() <= 128);
    for (char c : frame.sender) FUZZ_CHECK(c > ' ' && c <= '~');
    FUZZ_CHECK(!frame.conn_id.empty() && frame.conn_id.size() <= 20);
    for (char c : frame.conn_id) FUZZ_CHECK(c >= '0' && c <= '9');
    FUZZ_CHECK(!frame.path.empty() && frame.path.find(' ') == std::string_view::npos);
    const Header* start = frame.find("x-mongrel2-upload-start");
    FUZZ_CHECK(frame.upload_start == (start ? start->value : std::string()));
    const Header* done = frame.find("x-mongrel2-upload-done");
    FUZZ_CHECK(frame.upload_done == (done ? done->value : std::string()));
    const Header* method = frame.find("METHOD");
    if (frame.kind == FrameKind::xml) FUZZ_CHECK(method && method->value == "XML");
    if (frame.kind == FrameKind::json || frame.kind == FrameKind::disconnect)
      FUZZ_CHECK(method && method->value == "JSON");
    if (method && method->value == "JSON")
      FUZZ_CHECK(frame.kind == FrameKind::json || frame.kind == FrameKind::disconnect);

    round_trip(frame);
    return e;
  }

 private:
  // The decoded headers, written out again in either format (one entry per
  // header, so arrays come back as repeated keys), decode to the same frame.
  void round_trip(const Frame& frame) {
    const std::string envelope = std::string(frame.sender) + " " + std::string(frame.conn_id) +
                                 " " + std::string(frame.path) + " ";
    std::string tnet;
    std::string json = "{";
    std::string m2_json = "{";
    bool utf8 = true;
    for (const Header& h : frame.headers) {
      tnet += netstring(h.name) + netstring(h.value);
      if (json.size() > 1) json += ',';
      if (m2_json.size() > 1) m2_json += ',';
      json += json_string(h.name) + ':' + json_string(h.value);
      m2_json += mongrel2_json_string(h.name) + ':' + mongrel2_json_string(h.value);
      utf8 = utf8 && is_utf8(h.name) && is_utf8(h.value);
    }
    json += '}';
    m2_json += '}';

    const ExactCopy as_tnet(envelope + netstring(tnet, '}') + netstring(frame.body));
    Frame back;
    FUZZ_CHECK(reused_->decode(as_tnet.view(), back) == DecodeError::ok);
    FUZZ_CHECK(same_headers(frame, back) && back.kind == frame.kind && back.body == frame.body);

    // Any header bytes, written as Mongrel2 writes them.
    const ExactCopy as_m2_json(envelope + netstring(m2_json) + netstring(frame.body));
    FUZZ_CHECK(reused_->decode(as_m2_json.view(), back) == DecodeError::ok);
    FUZZ_CHECK(same_headers(frame, back) && back.kind == frame.kind && back.body == frame.body);

    // Strict JSON strings are UTF-8, so only such headers can be written so.
    if (!utf8) return;
    const ExactCopy as_json(envelope + netstring(json) + netstring(frame.body));
    FUZZ_CHECK(reused_->decode(as_json.view(), back) == DecodeError::ok);
    FUZZ_CHECK(same_headers(frame, back) && back.kind == frame.kind && back.body == frame.body);
  }

  std::unique_ptr<FrameDecoder> reused_;
};

}  // namespace brubeck::fuzz

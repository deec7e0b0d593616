// SseParser: reads a Server-Sent Events stream (the WHATWG "event stream" format) as it
// arrives, in pieces of any size, and hands over each complete event.
//
// Lines end in LF, CR or CRLF; "field: value" lines set id, event and data (several data lines
// are joined with LF); lines starting with ':' are comments; an empty line ends the event.
// Hostile input cannot grow it without bound: a line over `max_line` bytes is dropped along
// with the event it belongs to, and counted. Pure; not thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace synod {

struct SseEvent {
  std::string id;     // the last id seen in the stream, as Last-Event-ID would send it
  std::string event;  // "message" if not given
  std::string data;
};

class SseParser {
 public:
  explicit SseParser(std::function<void(const SseEvent&)> on_event, size_t max_line = 1 << 20)
      : on_event_(std::move(on_event)), max_line_(max_line) {}

  void Feed(std::string_view bytes);
  const std::string& last_id() const { return last_id_; }
  size_t dropped_lines() const { return dropped_lines_; }

 private:
  void Line(std::string_view line);

  std::function<void(const SseEvent&)> on_event_;
  size_t max_line_;
  std::string line_;
  bool skip_lf_ = false;     // the last line ended in CR: a following LF belongs to it
  bool overflowed_ = false;  // the current line is too long: drop it and its event
  bool poisoned_ = false;    // the current event lost a line
  std::string last_id_;
  std::string event_;
  std::string data_;
  bool has_data_ = false;
  size_t dropped_lines_ = 0;
};

}  // namespace synod

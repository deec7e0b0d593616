#include "net/sse_parser.h"

namespace synod {

void SseParser::Feed(std::string_view bytes) {
  for (const char c : bytes) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (c == '\n') continue;
    }
    if (c == '\r' || c == '\n') {
      skip_lf_ = c == '\r';
      if (overflowed_) {
        overflowed_ = false;
        poisoned_ = true;
        ++dropped_lines_;
      } else {
        Line(line_);
      }
      line_.clear();
      continue;
    }
    if (overflowed_) continue;
    if (line_.size() >= max_line_) {
      overflowed_ = true;
      line_.clear();
      continue;
    }
    line_.push_back(c);
  }
}

void SseParser::Line(std::string_view line) {
  if (line.empty()) {
    if (has_data_ && !poisoned_) {
      on_event_(SseEvent{last_id_, event_.empty() ? "message" : event_, data_});
    }
    event_.clear();
    data_.clear();
    has_data_ = false;
    poisoned_ = false;
    return;
  }
  if (line.front() == ':') return;
  const size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_ = value;
  } else if (field == "id" && value.find('\0') == std::string_view::npos) {
    last_id_ = value;
  }
}

}  // namespace synod

#include "timers/fire_scheduler.h"

#include <algorithm>

namespace synod {

FireScheduler::FireScheduler(const TimerState& state, std::string self_id)
    : state_(state), self_id_(std::move(self_id)) {}

void FireScheduler::SetNodes(std::vector<std::string> node_ids) {
  if (!ownership_.SetNodes(std::move(node_ids))) return;
  const auto& nodes = ownership_.nodes();
  auto self = std::find(nodes.begin(), nodes.end(), self_id_);
  self_index_ = self == nodes.end() ? -1 : static_cast<int>(self - nodes.begin());
  cursor_ = kStart;
}

void FireScheduler::Rewind(int64_t to) {
  if (to <= cursor_.first) cursor_ = Position{to - 1, Uuid{}};
}

void FireScheduler::OnChange(const Uuid& id, std::optional<int64_t> next_attempt_nanos) {
  if (finished_.erase(id) > 0) started_.erase(id);
  if (next_attempt_nanos) Rewind(*next_attempt_nanos);
}

void FireScheduler::OnReset() {
  for (const Uuid& id : finished_) started_.erase(id);
  finished_.clear();
  cursor_ = kStart;
}

std::vector<Uuid> FireScheduler::TakeDue(int64_t now_nanos, size_t limit) {
  std::vector<Uuid> due;
  const TimerState::Index& pending = state_.pending();
  for (auto it = pending.upper_bound(cursor_); it != pending.end() && it->first <= now_nanos;
       ++it) {
    if (due.size() >= limit) break;
    cursor_ = *it;
    if (self_index_ < 0 || !ownership_.Owns(static_cast<size_t>(self_index_), it->second)) {
      continue;
    }
    if (started_.contains(it->second)) continue;
    std::optional<wire::TimerRecord> record = state_.Get(it->second);
    started_.emplace(it->second, std::pair{record->occurrence(), record->attempts()});
    due.push_back(it->second);
  }
  return due;
}

void FireScheduler::Finished(const Uuid& id) {
  auto it = started_.find(id);
  if (it == started_.end()) return;
  std::optional<wire::TimerRecord> record = state_.Get(id);
  const bool unchanged = record && record->status() == wire::TIMER_WAITING &&
                         std::pair{record->occurrence(), record->attempts()} == it->second;
  if (unchanged) {
    finished_.insert(id);
    return;
  }
  started_.erase(it);
  if (record && record->status() == wire::TIMER_WAITING) Rewind(record->next_attempt_nanos());
}

std::optional<int64_t> FireScheduler::NextWake() const {
  auto it = state_.pending().upper_bound(cursor_);
  if (it == state_.pending().end()) return std::nullopt;
  return it->first;
}

}  // namespace synod

#include "timers/fire_scheduler.h"

#include <algorithm>

namespace synod {

FireScheduler::FireScheduler(const TimerState& state, std::string self_id,
                             int64_t backup_delay_nanos)
    : state_(state), self_id_(std::move(self_id)), backup_delay_(backup_delay_nanos) {}

void FireScheduler::SetNodes(std::vector<std::string> node_ids, std::optional<int64_t> now_nanos) {
  TimerOwnership before = ownership_;
  if (!ownership_.SetNodes(std::move(node_ids))) return;
  previous_ = std::move(before);
  previous_self_index_ = self_index_;
  handover_until_.reset();
  if (now_nanos) handover_until_ = *now_nanos + kHandoverNanos;
  const auto& nodes = ownership_.nodes();
  auto self = std::find(nodes.begin(), nodes.end(), self_id_);
  self_index_ = self == nodes.end() ? -1 : static_cast<int>(self - nodes.begin());
  cursor_ = backup_cursor_ = kStart;
  handover_held_.clear();
  backup_not_before_.reset();
  if (now_nanos) backup_not_before_ = *now_nanos + backup_delay_;
}

void FireScheduler::Rewind(int64_t to) {
  if (to <= cursor_.first) cursor_ = Position{to - 1, Uuid{}};
  if (to <= backup_cursor_.first) backup_cursor_ = Position{to - 1, Uuid{}};
}

void FireScheduler::HoldBackups(int64_t until_nanos) {
  backup_held_until_ = std::max(backup_held_until_, until_nanos);
}

TimerState::Listener FireScheduler::Listener() {
  return TimerState::Listener{
      .on_change = [this](const Uuid& id, std::optional<int64_t> next) { OnChange(id, next); },
      .on_reset = [this] { OnReset(); },
      .on_attempt = nullptr,
  };
}

void FireScheduler::OnChange(const Uuid& id, std::optional<int64_t> next_attempt_nanos) {
  if (finished_.erase(id) > 0) started_.erase(id);
  if (next_attempt_nanos) Rewind(*next_attempt_nanos);
}

void FireScheduler::OnReset() {
  for (const Uuid& id : finished_) started_.erase(id);
  finished_.clear();
  cursor_ = backup_cursor_ = kStart;
  handover_held_.clear();
  backup_not_before_.reset();
}

std::optional<int64_t> FireScheduler::TakeoverAt(const wire::TimerRecord& record,
                                                 const std::string& owner) const {
  if (record.begun_attempt() == record.attempts() + 1) return std::nullopt;
  const int64_t since =
      std::max(record.next_attempt_nanos(), state_.LastHeardFrom(owner).value_or(kStart.first));
  return since + backup_delay_;
}

void FireScheduler::Take(const Position& position, const wire::TimerRecord& record,
                         std::vector<Uuid>& due) {
  started_.emplace(position.second, std::pair{record.occurrence(), record.attempts()});
  due.push_back(position.second);
}

template <typename Wanted>
void FireScheduler::Walk(Position& cursor, int64_t until, size_t limit, std::vector<Uuid>& due,
                         Wanted wanted) {
  const TimerState::Index& pending = state_.pending();
  for (auto it = pending.upper_bound(cursor); it != pending.end() && it->first <= until; ++it) {
    if (due.size() >= limit) break;
    if (self_index_ < 0 || started_.contains(it->second)) {
      cursor = *it;
      continue;
    }
    const auto [owner, backup] = ownership_.OwnerAndBackupOf(it->second);
    if (!wanted(owner == self_index_, backup == self_index_)) {
      cursor = *it;
      continue;
    }
    if (owner == self_index_ && now_ < *handover_until_ && !previous_.nodes().empty() &&
        previous_.OwnerOf(it->second) != previous_self_index_) {
      handover_held_.insert(*it);  // gained from another node: see TakeHeld()
      cursor = *it;
      continue;
    }
    std::optional<wire::TimerRecord> record = state_.Get(it->second);
    if (owner != self_index_) {
      // As the backup: not if the owner said it is sending this attempt; and not yet if it
      // recorded something lately (alive, only late: the loaded owner of a burst of timers):
      // look again once it has been silent for the backup delay.
      std::optional<int64_t> takeover = TakeoverAt(*record, ownership_.nodes()[owner]);
      if (!takeover) {
        cursor = *it;
        continue;
      }
      if (*takeover > now_) {
        backup_recheck_at_ = *takeover;
        return;
      }
    }
    cursor = *it;
    Take(*it, *record, due);
  }
}

void FireScheduler::TakeHeld(size_t limit, std::vector<Uuid>& due) {
  held_wake_ = std::numeric_limits<int64_t>::max();
  const bool handover_over = now_ >= *handover_until_;
  for (auto it = handover_held_.begin(); it != handover_held_.end();) {
    if (due.size() >= limit) {
      held_wake_ = now_;  // more may go at once
      break;
    }
    if (!handover_over && it->first + backup_delay_ > now_) {
      held_wake_ = std::min(held_wake_, it->first + backup_delay_);
      break;
    }
    if (!state_.pending().contains(*it) || started_.contains(it->second) ||
        ownership_.OwnerOf(it->second) != self_index_) {
      it = handover_held_.erase(it);  // moved, finished or taken since it was held
      continue;
    }
    std::optional<wire::TimerRecord> record = state_.Get(it->second);
    if (!handover_over) {
      // Before the handover delay is over: only what the previous owner's backup would take
      // now, as it has been silent for the backup delay since the timer was due; and only from
      // an owner that was dropped (not one still firing that lost it to a node back) while
      // there was a leader long enough for that silence to mean something (HoldBackups).
      const std::string& previous_owner = previous_.nodes()[previous_.OwnerOf(it->second)];
      const auto& nodes = ownership_.nodes();
      const bool dropped = std::find(nodes.begin(), nodes.end(), previous_owner) == nodes.end();
      std::optional<int64_t> takeover;
      if (dropped) takeover = TakeoverAt(*record, previous_owner);
      if (takeover) *takeover = std::max(*takeover, backup_held_until_);
      if (!takeover || *takeover > now_) {
        if (takeover) held_wake_ = std::min(held_wake_, *takeover);
        ++it;
        continue;
      }
    }
    Take(*it, *record, due);
    it = handover_held_.erase(it);
  }
}

std::vector<Uuid> FireScheduler::TakeDue(int64_t now_nanos, size_t limit) {
  std::vector<Uuid> due;
  now_ = now_nanos;
  if (!handover_until_) handover_until_ = now_nanos + kHandoverNanos;
  Walk(cursor_, now_nanos, limit, due, [](bool owner, bool) { return owner; });
  TakeHeld(limit, due);
  if (!backup_not_before_) backup_not_before_ = now_nanos + backup_delay_;
  if (now_nanos >= *backup_not_before_ && now_nanos >= backup_recheck_at_ &&
      now_nanos >= backup_held_until_) {
    Walk(backup_cursor_, now_nanos - backup_delay_, limit, due,
         [](bool, bool backup) { return backup; });
  }
  return due;
}

std::optional<int64_t> FireScheduler::NextWake() const {
  std::optional<int64_t> next;
  auto it = state_.pending().upper_bound(cursor_);
  if (it != state_.pending().end()) next = it->first;
  if (!handover_held_.empty()) {
    const int64_t held = std::min(*handover_until_, held_wake_);
    if (!next || held < *next) next = held;
  }
  auto backup = state_.pending().upper_bound(backup_cursor_);
  if (backup != state_.pending().end()) {
    int64_t at = std::max({backup->first + backup_delay_, backup_recheck_at_, backup_held_until_});
    if (backup_not_before_) at = std::max(at, *backup_not_before_);
    if (!next || at < *next) next = at;
  }
  return next;
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
  LookAgainAt(record);
}

void FireScheduler::LookAgainAt(const std::optional<wire::TimerRecord>& record) {
  if (record && record->status() == wire::TIMER_WAITING) Rewind(record->next_attempt_nanos());
}

bool FireScheduler::MustClaim(const wire::TimerRecord& record, int64_t now_nanos) const {
  std::optional<Uuid> id = Uuid::Parse(record.id());
  const bool own = id && self_index_ >= 0 && ownership_.OwnerOf(*id) == self_index_;
  const bool begun = record.begun_attempt() == record.attempts() + 1;
  const bool late = now_nanos - record.next_attempt_nanos() > backup_delay_ / 2;
  return !own || begun || late;
}

void FireScheduler::Release(const Uuid& id) {
  if (finished_.erase(id) == 0) return;  // released by a change already, maybe taken again
  started_.erase(id);
  LookAgainAt(state_.Get(id));
}

}  // namespace synod

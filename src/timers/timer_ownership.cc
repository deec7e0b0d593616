#include "timers/timer_ownership.h"

#include <algorithm>

#include "core/cow_map.h"
#include "timers/timer_state.h"

namespace synod {

std::vector<std::string> TimerOwnership::EligibleNodes(
    const std::vector<const wire::MemberRecord*>& members) {
  std::vector<std::string> alive;
  std::vector<std::string> not_gone;
  for (const wire::MemberRecord* member : members) {
    if (!member->modules().contains(std::string(TimerState::kName))) continue;
    if (member->state() == wire::ALIVE) alive.push_back(member->id());
    if (member->state() != wire::DEAD && member->state() != wire::LEFT) {
      not_gone.push_back(member->id());
    }
  }
  return alive.empty() ? not_gone : alive;
}

bool TimerOwnership::SetNodes(std::vector<std::string> node_ids) {
  std::sort(node_ids.begin(), node_ids.end());
  if (node_ids == nodes_) return false;
  nodes_ = std::move(node_ids);
  node_hashes_.clear();
  for (const std::string& id : nodes_) node_hashes_.push_back(StableHash(id));
  return true;
}

std::pair<int, int> TimerOwnership::OwnerAndBackupOf(const Uuid& timer) const {
  const uint64_t timer_hash = StableHash(timer);
  int best = -1;
  int second = -1;
  uint64_t best_score = 0;
  uint64_t second_score = 0;
  for (size_t i = 0; i < node_hashes_.size(); ++i) {
    const uint64_t score = StableHash(timer_hash ^ node_hashes_[i]);
    if (best < 0 || score > best_score) {
      second = best;
      second_score = best_score;
      best = static_cast<int>(i);
      best_score = score;
    } else if (second < 0 || score > second_score) {
      second = static_cast<int>(i);
      second_score = score;
    }
  }
  return {best, second};
}

}  // namespace synod

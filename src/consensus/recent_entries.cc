#include "consensus/recent_entries.h"

#include <algorithm>

namespace synod {

void RecentEntries::Record(uint64_t index, std::string_view payload) {
  if (complete_after_ == kUnknown) complete_after_ = index - 1;
  entries_.push_back(Entry{index, std::string(payload)});
  bytes_ += payload.size();
  while (entries_.size() > max_entries_ || (bytes_ > max_bytes_ && entries_.size() > 1)) {
    complete_after_ = entries_.front().index;
    bytes_ -= entries_.front().payload.size();
    entries_.pop_front();
  }
}

void RecentEntries::Restored(uint64_t index) {
  entries_.clear();
  bytes_ = 0;
  complete_after_ = index == 0 ? kUnknown : index;
}

bool RecentEntries::Collect(uint64_t after, uint64_t through, wire::EntryFeed& feed) const {
  if (complete_after_ == kUnknown || after < complete_after_) return false;
  auto it =
      std::upper_bound(entries_.begin(), entries_.end(), after,
                       [](uint64_t index, const Entry& entry) { return index < entry.index; });
  for (; it != entries_.end() && it->index <= through; ++it) {
    wire::EntryFeed::Entry* entry = feed.add_entries();
    entry->set_index(it->index);
    entry->set_payload(it->payload);
  }
  return true;
}

}  // namespace synod

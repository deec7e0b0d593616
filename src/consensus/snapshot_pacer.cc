#include "consensus/snapshot_pacer.h"

#include <algorithm>

namespace synod {

std::optional<unsigned> SnapshotPacer::OnEntry(size_t bytes) {
  sample_bytes_ += bytes;
  if (++sample_entries_ < kSampleEntries) return std::nullopt;
  const double sample = static_cast<double>(sample_bytes_) / sample_entries_;
  sample_bytes_ = 0;
  sample_entries_ = 0;
  // Quick to follow larger entries (memory), slow to trust smaller ones.
  average_ = average_ == 0 || sample > average_ ? sample : 0.9 * average_ + 0.1 * sample;
  const double fits = static_cast<double>(budget_) / (1.25 * std::max(average_, 1.0));
  const unsigned wanted = static_cast<unsigned>(
      std::clamp(fits, static_cast<double>(std::min(kFloor, max_)), static_cast<double>(max_)));
  // Small moves are not worth a change.
  if (wanted == threshold_ ||
      (wanted > threshold_ && wanted < threshold_ + threshold_ / 8 && wanted != max_)) {
    return std::nullopt;
  }
  threshold_ = wanted;
  return threshold_;
}

}  // namespace synod

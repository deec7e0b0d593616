#include "timesync/time_sample.h"

namespace synod {

bool MinDelayFilter::Add(const TimeSample& sample, MonoTime taken) {
  if (!sample.Plausible()) return false;
  samples_.push_back(Entry{sample, taken});
  while (samples_.size() > window_) samples_.pop_front();
  return true;
}

std::optional<MinDelayFilter::Entry> MinDelayFilter::Best() const {
  std::optional<Entry> best;
  for (const Entry& entry : samples_) {
    if (!best || entry.sample.RoundTripNanos() < best->sample.RoundTripNanos()) best = entry;
  }
  return best;
}

}  // namespace synod

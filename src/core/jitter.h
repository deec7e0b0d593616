// Jitter: spreads the periodic work of nodes that started it in step, so that their messages do
// not reach one node as a burst every period.
//
// Nodes start periodic work together more often than it seems: every node applies the same log
// entry at nearly the same moment (a new master clock), and from then on, with exact periods,
// their heartbeats and probes stay in step. Each Spread() varies a period by a random fraction,
// so the phases drift apart within a few periods. Not thread-safe; one per owner.
#pragma once

#include <chrono>
#include <random>

namespace synod {

class Jitter {
 public:
  // `fraction` in [0, 1): each period becomes period * (1 +- up to fraction).
  explicit Jitter(double fraction) : fraction_(fraction) {}

  std::chrono::milliseconds Spread(std::chrono::milliseconds period) {
    std::uniform_real_distribution<double> factor(1.0 - fraction_, 1.0 + fraction_);
    return std::chrono::milliseconds(
        static_cast<int64_t>(static_cast<double>(period.count()) * factor(random_)));
  }

 private:
  double fraction_;
  std::minstd_rand random_{std::random_device{}()};
};

}  // namespace synod

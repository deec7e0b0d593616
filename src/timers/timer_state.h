// TimerState: the "timers" state module: every webhook timer, its schedule and its attempts.
//
// A timer is created with a spec (where and how to call, the retry and late policies, an
// optional recurrence) and a start (a delay from the entry's time, or an absolute time). It
// waits in the pending index by the time of its next attempt; the nodes that fire timers read
// that index, call the webhook and record each attempt with Complete (and say with Begin that
// the attempt is under way: before sending a late timer or one they do not own, a claim that
// only one node is granted; or when the receiver is slow to answer, so that no backup sends it). An
// attempt is recorded once: a second record of the same attempt (a node that fired a timer another
// had already fired) is refused with kConflict. A failed attempt is retried with exponential
// backoff (or the receiver's Retry-After) until max_attempts; then the occurrence fails. A one-shot
// timer then finishes (done, failed, skipped, or cancelled by the user); a recurring one moves to
// its next occurrence. Finished timers stay readable until a Compact removes them.
//
// Pure and deterministic (time only from the ApplyContext); loop thread only.
#pragma once

#include <array>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include "consensus/state_module.h"
#include "core/cow_map.h"
#include "core/shared_bytes.h"
#include "core/uuid.h"
#include "proto/timers.pb.h"

namespace synod {

class TimerState final : public StateModule {
 public:
  static constexpr std::string_view kName = "timers";
  static constexpr int64_t kSecond = 1'000'000'000;
  // How far ahead a timer may be set, and the longest recurrence period.
  static constexpr int64_t kMaxHorizonNanos = 10 * 366 * 86'400 * kSecond;
  // A create that repeats an idempotency key within this long returns the first timer.
  static constexpr int64_t kIdempotencyWindowNanos = 24 * 3600 * kSecond;
  static constexpr size_t kHistory = 20;  // attempts kept per timer
  static constexpr size_t kMaxUrlBytes = 2048;
  static constexpr size_t kMaxBodyBytes = 64 * 1024;
  static constexpr size_t kMaxHeaders = 32;
  static constexpr size_t kMaxIdempotencyKeyBytes = 128;
  static constexpr uint32_t kMaxTimeoutMs = 300'000;
  // Timers one Compact removes at most, so that no entry takes long to apply.
  static constexpr size_t kCompactBatch = 20'000;
  // Version 2 adds claims (Begin before sending). A node whose claim expired (its timeout and
  // then this long to record the attempt) has crashed: another node's claim takes over.
  static constexpr uint32_t kClaimVersion = 2;
  static constexpr int64_t kClaimGraceNanos = 2 * kSecond;

  using Index = std::set<std::pair<int64_t, Uuid>>;

  static Proposal Create(const wire::TimerCreate& create);
  static Proposal Complete(const wire::TimerComplete& complete);
  // `version` 1 announces an attempt already sent; kClaimVersion claims it (see ApplyBegin).
  static Proposal Begin(const wire::TimerBegin& begin, uint32_t version);
  // When the claim on the current attempt of `record` expires (meaningful while it is begun).
  static int64_t ClaimExpiry(const wire::TimerRecord& record);
  static Proposal Cancel(const std::string& id);
  static Proposal Reschedule(const wire::TimerReschedule& reschedule);
  // Removes finished timers that finished before `finished_before_nanos`, and the oldest
  // finished ones beyond `keep_at_most`.
  static Proposal Compact(int64_t finished_before_nanos, uint64_t keep_at_most);

  // The first problem with a spec, as Apply would find it: the URL (absolute http or https),
  // the method, headers, sizes, timeout, retry policy and recurrence.
  static Status CheckSpec(const wire::TimerSpec& spec);

  std::optional<wire::TimerRecord> Get(const Uuid& id) const;
  size_t size() const { return records_.size(); }
  size_t count(wire::TimerStatus status) const { return counts_[status]; }
  // Waiting timers by the time of their next attempt.
  const Index& pending() const { return pending_; }
  // Finished timers by the time they finished.
  const Index& finished() const { return finished_; }
  // When the log last carried an attempt recorded or announced by `node` (the entry's time);
  // nothing if not since this node started or restored a snapshot. A sign of life that the
  // backup of a timer checks before it sends what the owner may be sending late.
  std::optional<int64_t> LastHeardFrom(const std::string& node) const;

  // Told of changes inside Apply and Install, so that a scheduler can look again at what it
  // already passed or started.
  struct Listener {
    // A timer was created, changed or removed; `next_attempt_nanos` if it is pending now.
    std::function<void(const Uuid& id, std::optional<int64_t> next_attempt_nanos)> on_change;
    // A snapshot replaced the whole state.
    std::function<void()> on_reset;
    // An attempt was recorded (`record` as it is after it).
    std::function<void(const wire::TimerRecord& record, const wire::TimerAttempt& attempt)>
        on_attempt;
  };
  void SetListener(Listener listener) { listener_ = std::move(listener); }

  // StateModule.
  std::string_view name() const override { return kName; }
  uint32_t version() const override { return kClaimVersion; }
  // The records of version 2 only add a field, which version 1 keeps unread.
  uint32_t section_version() const override { return 1; }
  Result<std::string> Apply(const ApplyContext& context, uint32_t version,
                            std::string_view command) override;
  std::unique_ptr<SectionCapture> Capture() const override;
  std::unique_ptr<SectionLoader> NewLoader(uint32_t version) override;

 private:
  class Loader;
  // Records are kept serialized: a million pending timers take a third of the memory of
  // parsed messages, and a snapshot writes them as they are.
  struct Entry {
    Uuid id;
    SharedBytes record;
    const Uuid& key() const { return id; }
  };
  using Map = CowTable<Entry>;

  Result<std::string> ApplyCreate(const ApplyContext& context, wire::TimerCreate& create);
  Result<std::string> ApplyComplete(const ApplyContext& context, const wire::TimerComplete& done);
  Result<std::string> ApplyBegin(const ApplyContext& context, uint32_t version,
                                 const wire::TimerBegin& begin);
  Result<std::string> ApplyCancel(const ApplyContext& context, const wire::TimerCancel& cancel);
  Result<std::string> ApplyReschedule(const ApplyContext& context,
                                      const wire::TimerReschedule& reschedule);
  Result<std::string> ApplyCompact(const wire::TimerCompact& compact);
  // Ends the current occurrence: a recurring timer waits for its next one, another finishes.
  void EndOccurrence(wire::TimerRecord& record, wire::TimerStatus status, std::string outcome,
                     int64_t now);
  // Stores `record`, serialized as `bytes` (replacing `before`, if any), and keeps the indexes
  // and counts in step.
  void Store(const Uuid& id, const wire::TimerRecord* before, const wire::TimerRecord& record,
             std::string_view bytes);
  void Remove(const Uuid& id, const wire::TimerRecord& record);
  Result<wire::TimerRecord> Find(const std::string& id) const;
  // Find(), and kConflict saying its status unless it is waiting (not yet due, no attempt).
  Result<wire::TimerRecord> FindWaiting(const std::string& id, int64_t now) const;

  Map records_;
  Index pending_;
  Index finished_;
  std::unordered_map<std::string, Uuid> by_idempotency_key_;
  std::unordered_map<std::string, int64_t> last_heard_;  // by node id
  std::array<size_t, 5> counts_{};
  Listener listener_;
};

// The status a user sees at `now_nanos`: "waiting", "executing" (due, being fired or retried),
// "done", "failed", "cancelled" or "skipped".
std::string_view TimerStatusName(const wire::TimerRecord& record, int64_t now_nanos);

}  // namespace synod

// FireScheduler: which timers this node fires now, and when to look next. The pure core of
// the timer service: no clock, no I/O; the service passes the time in.
//
// It walks the replicated pending index (TimerState::pending(), ordered by next attempt) with a
// cursor: each call to TakeDue() looks only at timers due since the last one, takes those this
// node owns and has not already started, and skips the others (their owners fire them). The
// cursor goes back when a timer enters the index behind it (created already due, or retried)
// and to the start when ownership changes (a node died: its overdue timers become ours) or a
// snapshot replaces the state, so nothing is missed and nothing is looked at twice in the steady
// state. A started timer stays started until its record here changes (the attempt was recorded
// and applied on this node, by us or by another node): the answer to a proposal can come before
// this node applied it, and the timer must not look due again meanwhile.
//
// Each timer also has a backup node, which takes it `backup_delay` after its time if it is
// still pending then and no node said it began the attempt (TimerState::Begin): so the timers
// of a node that died fire that late, long before the cluster declares the node dead and moves
// its timers. A second cursor walks the index that far behind the first; it stops at a timer
// whose owner recorded something within the backup delay (alive, only late) and looks again
// once the owner has been silent that long. When the nodes change, a timer this node gains from
// a node that may still be sending it (one that came back, or was only suspected) waits a
// handover delay, so that an attempt already under way there is recorded first; unless that node
// was dropped from the list and has been silent for the backup delay since the timer was due
// (with a leader: not while backups are held), so that a dead node's timers are
// no later than the backup delay even when the change comes while they are overdue. Timers that
// wait are set aside, so they do not hold up the node's own timers. After a change of
// nodes or state (a restart, a node back) the backup also waits that long from the first
// TakeDue(), so that an owner that has just come back fires its overdue timers alone. And after
// an election the backups wait a while (HoldBackups()): no node fires without a leader, so an
// owner's silence while there was none says nothing about whether it is alive.
// Loop thread only; `state` must outlive the scheduler.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "timers/timer_ownership.h"
#include "timers/timer_state.h"

namespace synod {

struct UuidHash {
  size_t operator()(const Uuid& id) const { return id.high ^ (id.low * 0x9E3779B97F4A7C15ull); }
};

class FireScheduler {
 public:
  static constexpr int64_t kHandoverNanos = 500'000'000;

  FireScheduler(const TimerState& state, std::string self_id, int64_t backup_delay_nanos);

  // The nodes that fire timers now (TimerOwnership::EligibleNodes); if that changes, every
  // pending timer is looked at again. The handover and backup delays run from `now_nanos`
  // (without it, from the next TakeDue()).
  void SetNodes(std::vector<std::string> node_ids, std::optional<int64_t> now_nanos = std::nullopt);
  // What the TimerState must tell this scheduler: state.SetListener(scheduler.Listener()).
  TimerState::Listener Listener();
  // The owners could not fire until now (the cluster had no leader): the backups take nothing
  // before `until_nanos`, which gives an owner firing its overdue timers now the time to say so.
  void HoldBackups(int64_t until_nanos);
  void OnChange(const Uuid& id, std::optional<int64_t> next_attempt_nanos);
  void OnReset();

  // Timers due at `now_nanos` that this node owns and has not started, oldest first, then
  // those it backs up that are overdue by the backup delay; at most `limit` in all. They count
  // as started until Finished().
  std::vector<Uuid> TakeDue(int64_t now_nanos, size_t limit);
  // When TakeDue() may next find something (nullopt: nothing pending ahead of the cursor).
  std::optional<int64_t> NextWake() const;
  // The attempt of `id` is over (recorded, or refused because another was): it may be taken
  // again once its record here changes, or at once if it already did since TakeDue().
  void Finished(const Uuid& id);
  // Whether this node must claim the attempt of `record` it took before sending it
  // (TimerState::ApplyBegin): only the owner sends a timer on time, so it sends at once; any
  // other firing (a backup's, a restarted owner's, a late one after an outage or a handover)
  // may race another node's.
  bool MustClaim(const wire::TimerRecord& record, int64_t now_nanos) const;
  // Another node's claim on the attempt of `id` that this node could not take has expired:
  // `id` may be taken again, though its record did not change.
  void Release(const Uuid& id);
  size_t started() const { return started_.size(); }
  bool owns_any() const { return self_index_ >= 0; }
  const TimerOwnership& ownership() const { return ownership_; }

 private:
  using Position = std::pair<int64_t, Uuid>;
  static constexpr Position kStart{std::numeric_limits<int64_t>::min(), Uuid{}};

  // Walks `cursor` up to `until`, taking what `wanted` accepts.
  template <typename Wanted>
  void Walk(Position& cursor, int64_t until, size_t limit, std::vector<Uuid>& due, Wanted wanted);
  // Takes the held gained timers that may go now: all once the handover delay is over, before
  // that those whose previous owner's backup would take them.
  void TakeHeld(size_t limit, std::vector<Uuid>& due);
  // When a node other than `owner` may send the attempt of `record`: once the owner has been
  // silent for the backup delay since the attempt was due; never while it says it is sending it.
  std::optional<int64_t> TakeoverAt(const wire::TimerRecord& record,
                                    const std::string& owner) const;
  void Take(const Position& position, const wire::TimerRecord& record, std::vector<Uuid>& due);

  const TimerState& state_;
  std::string self_id_;
  int64_t backup_delay_;
  TimerOwnership ownership_;
  int self_index_ = -1;
  TimerOwnership previous_;  // before the last change of nodes
  int previous_self_index_ = -1;
  std::optional<int64_t> handover_until_;  // unset: from the next TakeDue() + kHandoverNanos
  // Gained timers the walk passed during the handover delay, and when one may be taken early.
  std::set<Position> handover_held_;
  int64_t held_wake_ = std::numeric_limits<int64_t>::max();
  int64_t now_ = 0;
  Position cursor_ = kStart;                  // every pending entry at or before it was looked at
  Position backup_cursor_ = kStart;           // the same, as the backup
  std::optional<int64_t> backup_not_before_;  // unset: from the next TakeDue() + backup delay
  int64_t backup_recheck_at_ = std::numeric_limits<int64_t>::min();  // an owner was heard lately
  int64_t backup_held_until_ = std::numeric_limits<int64_t>::min();  // HoldBackups()
  void Rewind(int64_t to);
  // A timer no longer started: the walks look at it again if it is still waiting.
  void LookAgainAt(const std::optional<wire::TimerRecord>& record);

  // Taken, with the record's (occurrence, attempts) when they were: a change releases them.
  std::unordered_map<Uuid, std::pair<uint64_t, uint32_t>, UuidHash> started_;
  std::unordered_set<Uuid, UuidHash> finished_;  // started, and their attempt is over
};

}  // namespace synod

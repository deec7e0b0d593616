// TimerService: webhook timers on one node.
//
// Every node: owns the "timers" state module (registered with consensus), takes creates,
// cancels and reschedules and proposes them (answered once committed), and fires its share of
// the due timers. The share is decided by TimerOwnership over the live members, so firing
// spreads over the cluster and a dead member's timers move to the others. There is no polling:
// a loop timer is armed for the next due time in the replicated pending index
// (FireScheduler), and each webhook is an asynchronous HTTP request on the loop, at most
// `per_destination` at once to one host and `max_in_flight` in all, so a slow receiver delays
// only its own timers.
//
// Once, and honest about it: an attempt is recorded (TimerState::Complete) after the receiver
// answered; a node that crashes between sending and recording leaves the attempt unrecorded and
// another node sends it again, with the same Idempotency-Key (the timer id) and attempt number
// and a newer term, so that the receiver can drop the repeat. A recording that cannot commit now
// is retried (same request id) until it does.
//
// Each timer also has a backup node (TimerOwnership), which sends it if it is still pending
// `backup_delay` after its time and its owner did not announce the attempt: the owner announces
// an attempt whose receiver has not answered within `announce_after`. So a node's crash delays
// its timers by about `backup_delay`, and a slow receiver still gets one request. Only the
// owner sends a timer on time without asking; every other firing (FireScheduler::MustClaim: a
// backup's, a late one after an outage, a restart or a handover) first commits a claim on the
// attempt and sends only if it was granted, so two nodes never both send it.
//
// Nothing fires without a leader, and after each change of term a node first catches up with
// what is committed (ConfirmRead): a node back from a partition or a restart learns the attempts
// others recorded meanwhile before it fires, and the backups give the owners twice
// `announce_after` to fire what they hold first.
//
// On the leader, finished timers are compacted out after `retention`. Loop thread only.
#pragma once

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "consensus/cluster_log.h"
#include "core/clock.h"
#include "core/scheduler.h"
#include "events/event_log.h"
#include "net/http_sender.h"
#include "timers/fire_scheduler.h"
#include "timers/timer_state.h"
#include "timers/webhook_signer.h"

namespace synod {

struct TimerOptions {
  std::string self_id;
  std::chrono::seconds retention{24 * 3600};  // finished timers kept this long
  uint64_t keep_finished = 1'000'000;         // and at most this many
  size_t max_in_flight = 4096;                // webhooks sent and not yet recorded
  size_t per_destination = 128;               // concurrent requests to one scheme://host:port
  // A timer's backup node sends it this long after its time if it is still pending and its
  // owner did not say it began (the owner died): the worst lateness after a node's crash.
  std::chrono::milliseconds backup_delay{1000};
  // An attempt not answered within this long is announced (TimerState::Begin), so that the
  // backup does not send it too.
  std::chrono::milliseconds announce_after{300};
  std::optional<WebhookSigner> signer;
  EventSink events;  // told of every attempt recorded, whichever node made it
};

// What this node did, for /metrics.
struct TimerFireStats {
  static constexpr std::array<double, 12> kLatenessBounds = {0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                                                             0.1,   0.25,  0.5,   1,    2.5,   10};
  uint64_t attempts = 0;   // webhooks sent
  uint64_t succeeded = 0;  // answered 2xx
  uint64_t failed = 0;     // answered otherwise, or not at all
  uint64_t skipped = 0;    // not sent: too late under the timer's late policy
  // Lateness of first attempts (sent minus due), cumulative counts per bound, seconds.
  std::array<uint64_t, kLatenessBounds.size()> lateness_buckets{};
  uint64_t lateness_count = 0;
  double lateness_sum = 0;
};

class TimerService {
 public:
  using RecordCallback = std::function<void(Result<wire::TimerRecord>)>;

  // Everything passed in must outlive the service. Webhooks go through `webhooks`.
  TimerService(Scheduler& loop, const Clock& clock, ClusterLog& cluster, HttpSender& webhooks,
               TimerOptions options);
  ~TimerService();

  void Start();
  void Stop();

  // Proposes a create (a new id is given if `create` has none; `request_id` may be empty);
  // answers with the committed record (the first one for a repeated idempotency key).
  void Create(wire::TimerCreate create, std::string request_id, RecordCallback done);
  void Cancel(const std::string& id, RecordCallback done);
  void Reschedule(wire::TimerReschedule reschedule, RecordCallback done);
  std::string NewTimerId() { return Uuid::Random(random_).ToString(); }

  const TimerState& state() const { return state_; }
  const TimerFireStats& stats() const { return stats_; }
  int64_t NowNanos() const { return clock_.WallUtcNanos(); }

 private:
  struct Firing;
  struct Destination {
    size_t active = 0;
    std::deque<std::unique_ptr<Firing>> waiting;
  };

  void Propose(Proposal proposal, std::string request_id, RecordCallback done);
  void OnStateChanged();
  void Arm();
  void Wake();
  void Fire(const Uuid& id, int64_t now);
  // Whether this firing must first claim its attempt (TimerState::ApplyBegin).
  bool MustClaim(const wire::TimerRecord& record, int64_t now) const;
  // Sends the attempt once its claim is committed; drops it if another node holds it.
  void Claim(std::unique_ptr<Firing> firing);
  void Send(const std::string& destination, std::unique_ptr<Firing> firing);
  void OnAnswered(std::unique_ptr<Firing> firing, Result<HttpReply> reply);
  void PublishAttempt(const wire::TimerRecord& record, const wire::TimerAttempt& attempt) const;
  void Announce(const wire::TimerAttempt& attempt, const std::string& id);
  void Record(std::unique_ptr<Firing> firing);
  void Housekeeping();

  Scheduler& loop_;
  const Clock& clock_;
  ClusterLog& cluster_;
  TimerOptions options_;
  TimerState state_;
  FireScheduler scheduler_;
  HttpSender& http_;
  std::map<std::string, Destination> destinations_;
  Timer wake_timer_;
  std::optional<int64_t> armed_for_;
  uint64_t term_ = 0;        // the Raft term this node caught up in before it fired
  bool confirming_ = false;  // catching up with a new term's commits
  Timer housekeeping_timer_;
  TimerFireStats stats_;
  std::mt19937_64 random_{std::random_device{}()};
  bool stopped_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace synod

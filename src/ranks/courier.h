// Courier: the leader's duty of delivering every command to each of its recipients.
//
// It works from the replicated state alone (RankState::pending()), so a new leader carries on
// where the last one stopped. Per recipient, deliveries go in command id order, one request in
// flight at a time: to a member, a CommandDelivery of up to kMaxBatch commands over the peer
// protocol, which the member acknowledges with the highest id it has received (it drops what it
// saw before, so redelivery is harmless); to an external client, `POST <addr>/receive-command
// {"sender": rank, "command": text}` with an Idempotency-Key header, one command at a time.
// Progress is committed as "recipient received everything through command N" (DeliveryProgress):
// in the log entry of a command sent once it has waited half of kProgressInterval, or on its own
// after kProgressInterval. A member is
// retried until it is delivered or unranked (declared dead, or gone); an external client that fails
// `external_failures` times in a row is unranked, which fails what was pending for it. Loop thread
// only.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "consensus/consensus_service.h"
#include "core/clock.h"
#include "core/event_loop.h"
#include "net/async_http_client.h"
#include "peer/peer_service.h"
#include "ranks/rank_module.h"
#include "ranks/rank_state.h"

namespace synod {

struct CourierOptions {
  unsigned external_failures = 3;
  std::chrono::milliseconds external_timeout{3000};
  std::chrono::milliseconds member_timeout{2000};
};

class Courier {
 public:
  static constexpr size_t kMaxBatch = 256;
  // Every node of the cluster applies each entry, and writes it to disk, so acknowledgements
  // are gathered for a while rather than committed one at a time, and preferably ride in the
  // entry of a command (FlushProgressIfDue). Senders do not wait for it.
  static constexpr std::chrono::milliseconds kProgressInterval{200};

  // `module` (the replicated ranks) must outlive the courier.
  Courier(EventLoop& loop, const Clock& clock, PeerService& peers, ConsensusService& consensus,
          const RankModule& module, CourierOptions options);

  // `deliver_locally` takes this node's own deliveries (when the leader is a recipient);
  // `on_delivered` hears of every acknowledgement, before its outcome is committed.
  void Start(std::string self_id, PeerService::RequestHandler deliver_locally,
             std::function<void()> on_delivered);
  // Starts what is due. Call whenever the replicated state changed; cheap when nothing is due.
  void Reconcile();
  void Stop();

  // Whether `recipient` acknowledged command `id` while its outcome is not applied yet. The
  // sender need not wait for that commit: a redelivery would be dropped by the recipient.
  bool Acknowledged(const std::string& recipient, uint64_t id) const;

  // Called just before a command is proposed: if the acknowledgements gathered have waited half
  // of kProgressInterval, proposes them now, so that they share the command's log entry (the
  // consensus puts what is proposed in one turn of the loop in one entry) instead of taking an
  // entry of their own, which every node would write and apply.
  void FlushProgressIfDue();

 private:
  struct Recipient {
    bool in_flight = false;
    uint64_t acknowledged_through = 0;  // it received every command up to this one
    unsigned failures = 0;              // in a row
    MonoTime retry_at{};
  };

  // Command ids, ascending, each with the recipient's index in that command.
  using Batch = std::vector<std::pair<uint64_t, uint32_t>>;

  // Sends `key` its next batch of what is pending unless a request is in flight or a retry is
  // not due.
  void Dispatch(const std::string& key, const RankState::PendingDeliveries& pending, MonoTime now);
  void DeliverToMember(const std::string& key, Batch batch);
  void DeliverToExternal(const std::string& key, uint64_t id, const wire::Delivery& to);
  void Succeeded(const std::string& key, uint64_t through);
  void Failed(const std::string& key, const std::string& why, bool external);
  void Acknowledge(const std::string& key, uint64_t through);
  void FlushProgress();

  const Clock& clock_;
  PeerService& peers_;
  ConsensusService& consensus_;
  const RankModule& module_;
  CourierOptions options_;
  std::string self_id_;
  PeerService::RequestHandler deliver_locally_;
  std::function<void()> on_delivered_;
  AsyncHttpClient http_;
  std::map<std::string, Recipient> recipients_;
  uint64_t term_ = 0;  // leadership generation; answers from an earlier one are ignored
  bool leading_ = false;
  std::map<std::string, uint64_t> progress_;  // acknowledged, not proposed yet
  MonoTime progress_since_{};                 // when progress_ stopped being empty
  Timer flush_timer_;
  Timer tick_timer_;  // retries and leadership changes
  bool stopped_ = false;
};

}  // namespace synod

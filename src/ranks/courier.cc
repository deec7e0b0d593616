#include "ranks/courier.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include <nlohmann/json.hpp>

namespace synod {
namespace {

// The seed's clients registered "ip:port"; some send a URL.
std::string ReceiveCommandUrl(std::string address) {
  while (!address.empty() && address.back() == '/') address.pop_back();
  if (address.rfind("http://", 0) != 0 && address.rfind("https://", 0) != 0) {
    address = "http://" + address;
  }
  return address + "/receive-command";
}

std::chrono::milliseconds Backoff(unsigned failures, std::chrono::milliseconds first) {
  const unsigned doublings = std::min(failures > 0 ? failures - 1 : 0u, 5u);
  return std::min(first * (1 << doublings), std::chrono::milliseconds(2000));
}

}  // namespace

Courier::Courier(EventLoop& loop, const Clock& clock, PeerService& peers,
                 ConsensusService& consensus, const RankModule& module, CourierOptions options)
    : clock_(clock),
      peers_(peers),
      consensus_(consensus),
      module_(module),
      options_(options),
      http_(loop),
      flush_timer_(loop),
      tick_timer_(loop) {}

void Courier::Start(std::string self_id, PeerService::RequestHandler deliver_locally,
                    std::function<void()> on_delivered) {
  self_id_ = std::move(self_id);
  deliver_locally_ = std::move(deliver_locally);
  on_delivered_ = std::move(on_delivered);
  tick_timer_.Start(std::chrono::milliseconds(100), std::chrono::milliseconds(100),
                    [this] { Reconcile(); });
}

void Courier::Stop() {
  stopped_ = true;
  tick_timer_.Stop();
  flush_timer_.Stop();
  recipients_.clear();
}

void Courier::Reconcile() {
  if (stopped_) return;
  if (!consensus_.IsLeader()) {
    if (leading_) {
      leading_ = false;
      ++term_;
      recipients_.clear();
      progress_.clear();
    }
    return;
  }
  if (!leading_) {
    leading_ = true;
    ++term_;
  }
  const RankState& ranks = module_.ranks();
  const auto& pending = ranks.pending();
  std::erase_if(recipients_, [&](const auto& entry) {
    auto it = pending.find(entry.first);
    return !entry.second.in_flight && (it == pending.end() || it->second.empty());
  });
  const MonoTime now = clock_.Monotonic();
  for (const auto& [key, ids] : pending) Dispatch(key, ids, now);
}

void Courier::Dispatch(const std::string& key, const RankState::PendingDeliveries& pending,
                       MonoTime now) {
  Recipient& recipient = recipients_[key];
  if (recipient.in_flight || now < recipient.retry_at) return;
  Batch batch;
  auto it = std::upper_bound(pending.begin(), pending.end(), recipient.acknowledged_through,
                             [](uint64_t id, const auto& delivery) { return id < delivery.first; });
  for (; it != pending.end() && batch.size() < kMaxBatch; ++it) {
    batch.push_back(*it);
  }
  if (batch.empty()) return;
  const wire::Delivery* delivery =
      module_.ranks().FindRecipient(batch.front().first, batch.front().second);
  if (delivery == nullptr) {
    spdlog::error("ranks: pending command {} for {} has no delivery record", batch.front().first,
                  key);
    return;
  }
  if (delivery->kind() == wire::EXTERNAL_RANK) {
    DeliverToExternal(key, batch.front().first, *delivery);
  } else {
    DeliverToMember(key, std::move(batch));
  }
}

bool Courier::Acknowledged(const std::string& recipient, uint64_t id) const {
  auto it = recipients_.find(recipient);
  return it != recipients_.end() && id <= it->second.acknowledged_through;
}

void Courier::DeliverToMember(const std::string& key, Batch batch) {
  const RankState& ranks = module_.ranks();
  const wire::MemberRecord* member = consensus_.members().FindMember(key);
  Result<Ipv4> ip = member ? Ipv4::Parse(member->ip()) : Result<Ipv4>(Status::Error("unknown"));
  if (!ip.ok()) {
    Failed(key, "no address known for member " + key, false);
    return;
  }
  wire::PeerMessage request;
  wire::CommandDelivery* delivery = request.mutable_command_delivery();
  for (const auto& [id, index] : batch) {
    const wire::CommandRecord* record = ranks.FindHeader(id);
    const wire::Delivery* to = ranks.FindRecipient(id, index);
    wire::CommandDelivery::Item* item = delivery->add_items();
    item->set_command_id(id);
    item->set_sender_rank(record->sender_rank());
    item->set_sender(record->sender_address());
    item->set_text(record->text());
    item->set_sent_at_nanos(record->sent_at_nanos());
    item->set_rank(to->rank());
  }
  recipients_[key].in_flight = true;
  const uint64_t term = term_;
  const uint64_t last = batch.back().first;
  auto on_response = [this, key, last, term](Result<wire::PeerMessage> response) {
    if (stopped_ || term != term_) return;
    auto it = recipients_.find(key);
    if (it == recipients_.end()) return;
    it->second.in_flight = false;
    if (!response.ok()) {
      Failed(key, response.error(), false);
      return;
    }
    const wire::CommandDeliveryAck& ack = response.value().command_delivery_ack();
    if (!response.value().has_command_delivery_ack() || !ack.error().empty()) {
      Failed(key, ack.error().empty() ? "no acknowledgement" : ack.error(), false);
      return;
    }
    // A recipient cannot have received more than was sent: an ack beyond it is not believed.
    const uint64_t through = std::min<uint64_t>(ack.received_through(), last);
    if (through < last) {
      Acknowledge(key, through);
      Failed(key, "acknowledged only through " + std::to_string(through), false);
      return;
    }
    Succeeded(key, through);
  };
  if (key == self_id_) {
    deliver_locally_(request, [on_response](wire::PeerMessage ack) { on_response(ack); });
  } else {
    peers_.Call(ip.value(), std::move(request), options_.member_timeout, on_response);
  }
}

void Courier::DeliverToExternal(const std::string& key, uint64_t id, const wire::Delivery& to) {
  const wire::CommandRecord* record = module_.ranks().FindHeader(id);
  OutgoingHttpRequest request;
  request.method = "POST";
  request.url = ReceiveCommandUrl(to.address());
  request.body =
      nlohmann::json{{"sender", record->sender_rank()}, {"command", record->text()}}.dump(
          -1, ' ', false, nlohmann::json::error_handler_t::replace);
  request.headers = {"Idempotency-Key: synod-command-" + std::to_string(id),
                     "X-Synod-Command-Id: " + std::to_string(id)};
  request.timeout = options_.external_timeout;
  recipients_[key].in_flight = true;
  const uint64_t term = term_;
  http_.Send(std::move(request), [this, key, id, term](Result<HttpReply> reply) {
    if (stopped_ || term != term_) return;
    auto it = recipients_.find(key);
    if (it == recipients_.end()) return;
    it->second.in_flight = false;
    if (!reply.ok()) {
      Failed(key, reply.error(), true);
    } else if (reply.value().status < 200 || reply.value().status > 299) {
      Failed(key, "receive-command answered HTTP " + std::to_string(reply.value().status), true);
    } else {
      Succeeded(key, id);
    }
  });
}

void Courier::Succeeded(const std::string& key, uint64_t through) {
  Recipient& recipient = recipients_[key];
  recipient.failures = 0;
  recipient.retry_at = MonoTime{};
  Acknowledge(key, through);
  on_delivered_();
  // The next batch for this recipient, if any, goes now.
  const auto& pending = module_.ranks().pending();
  if (auto ids = pending.find(key); ids != pending.end() && consensus_.IsLeader()) {
    Dispatch(key, ids->second, clock_.Monotonic());
  }
}

void Courier::Failed(const std::string& key, const std::string& why, bool external) {
  Recipient& recipient = recipients_[key];
  ++recipient.failures;
  if (recipient.failures == 1 || recipient.failures % 10 == 0) {
    spdlog::warn("ranks: delivery to {} failed ({} in a row): {}", key, recipient.failures, why);
  }
  if (external && recipient.failures >= options_.external_failures) {
    const std::string reason =
        "receive-command failed " + std::to_string(recipient.failures) + " times in a row: " + why;
    spdlog::warn("ranks: unranking {}: {}", key, reason);
    wire::RanksCommand unassign;
    unassign.mutable_unassign_rank()->set_address(key);
    unassign.mutable_unassign_rank()->set_reason(reason);
    consensus_.Propose(RankModule::Make(unassign), [key](Result<Committed> result) {
      if (!result.ok()) spdlog::warn("ranks: cannot unrank {}: {}", key, result.error());
    });
    recipient.failures = 0;
    recipient.retry_at = clock_.Monotonic() + std::chrono::seconds(1);
    return;
  }
  recipient.retry_at = clock_.Monotonic() +
                       Backoff(recipient.failures, std::chrono::milliseconds(external ? 200 : 100));
}

void Courier::Acknowledge(const std::string& key, uint64_t through) {
  uint64_t& acknowledged = recipients_[key].acknowledged_through;
  if (through <= acknowledged) return;
  acknowledged = through;
  progress_[key] = through;
  if (progress_.size() == 1) {
    progress_since_ = clock_.Monotonic();
    flush_timer_.Start(kProgressInterval, std::chrono::milliseconds(0),
                       [this] { FlushProgress(); });
  }
}

void Courier::FlushProgressIfDue() {
  if (!progress_.empty() && clock_.Monotonic() - progress_since_ >= kProgressInterval / 2) {
    FlushProgress();
  }
}

void Courier::FlushProgress() {
  flush_timer_.Stop();
  if (progress_.empty()) return;
  wire::RanksCommand command;
  for (const auto& [key, through] : progress_) {
    wire::DeliveryProgress::Recipient* recipient =
        command.mutable_delivery_progress()->add_recipients();
    recipient->set_recipient(key);
    recipient->set_through(through);
  }
  progress_.clear();
  const uint64_t term = term_;
  consensus_.Propose(RankModule::Make(command), [this, term, command](Result<Committed> result) {
    if (result.ok() || stopped_ || term != term_) return;
    // Not recorded: deliver again what is pending (the recipients drop what they have).
    spdlog::warn("ranks: cannot record delivery progress: {}", result.error());
    for (const auto& recipient : command.delivery_progress().recipients()) {
      auto it = recipients_.find(recipient.recipient());
      if (it != recipients_.end()) it->second.acknowledged_through = 0;
    }
  });
}

}  // namespace synod

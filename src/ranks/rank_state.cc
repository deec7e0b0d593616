#include "ranks/rank_state.h"

#include <algorithm>
#include <charconv>

namespace synod {

Result<std::string> NormalizeExternalAddress(const std::string& address) {
  std::string rest = address;
  for (const char* scheme : {"http://", "https://"}) {
    if (rest.rfind(scheme, 0) == 0) {
      rest = rest.substr(std::string_view(scheme).size());
      break;
    }
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty()) return Status::Error("ip_port is empty");
  if (address.size() > 256) return Status::Error("ip_port is longer than 256 characters");
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::Error("ip_port '" + address + "' is not host:port");
  }
  const std::string host = rest.substr(0, colon);
  for (char c : host) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
                    c == '_' || c == '[' || c == ']' || c == ':';
    if (!ok) return Status::Error("ip_port '" + address + "' has a bad character in its host");
  }
  const std::string port_text = rest.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port == 0 || port > 65535) {
    return Status::Error("ip_port '" + address + "' has no valid port (1-65535)");
  }
  return rest;
}

uint32_t RankState::Assign(wire::RankKind kind, const std::string& key, const std::string& address,
                           int64_t at_nanos) {
  for (size_t i = 0; i < holders_.size(); ++i) {
    if (holders_[i].key() == key) {
      if (holders_[i].address() != address) {
        holders_[i].set_address(address);
        ++ranks_version_;
      }
      return static_cast<uint32_t>(i);
    }
  }
  wire::RankHolder holder;
  holder.set_kind(kind);
  holder.set_key(key);
  holder.set_address(address);
  holder.set_ranked_at_nanos(at_nanos);
  holders_.push_back(std::move(holder));
  ++ranks_version_;
  return static_cast<uint32_t>(holders_.size() - 1);
}

bool RankState::Unassign(const std::string& key, const std::string& reason) {
  auto it = std::find_if(holders_.begin(), holders_.end(),
                         [&](const wire::RankHolder& h) { return h.key() == key; });
  if (it == holders_.end()) return false;
  holders_.erase(it);
  ++ranks_version_;
  auto pending = pending_.find(key);
  if (pending != pending_.end()) {
    for (const auto& [id, index] : pending->second) Settle(id, index, false, reason);
    pending_.erase(pending);
  }
  return true;
}

std::optional<uint32_t> RankState::RankOf(const std::string& key) const {
  for (size_t i = 0; i < holders_.size(); ++i) {
    if (holders_[i].key() == key) return static_cast<uint32_t>(i);
  }
  return std::nullopt;
}

std::shared_ptr<const RankState::Targets> RankState::CurrentTargets() {
  if (targets_ == nullptr || targets_version_ != ranks_version_) {
    auto targets = std::make_shared<Targets>();
    targets->reserve(holders_.size());
    for (size_t rank = 0; rank < holders_.size(); ++rank) {
      wire::Delivery& delivery = targets->emplace_back();
      delivery.set_recipient(holders_[rank].key());
      delivery.set_kind(holders_[rank].kind());
      delivery.set_address(holders_[rank].address());
      delivery.set_rank(static_cast<uint32_t>(rank));
    }
    targets_ = std::move(targets);
    targets_version_ = ranks_version_;
  }
  return targets_;
}

Result<uint64_t> RankState::AddCommand(const std::string& request_id, const std::string& sender,
                                       const std::string& text, int64_t at_nanos) {
  if (!request_id.empty()) {
    auto seen = by_request_.find(request_id);
    if (seen != by_request_.end()) return seen->second;
  }
  if (text.empty()) return Status::Error("command is empty");
  if (text.size() > kMaxCommandBytes) return Status::Error("command exceeds 64 KiB");
  const std::optional<uint32_t> sender_rank = RankOf(sender);
  if (!sender_rank) return Status::Error("sender " + sender + " is not ranked");

  Command command;
  wire::CommandRecord& header = command.header;
  header.set_id(next_command_id_++);
  header.set_request_id(request_id);
  header.set_sender(sender);
  header.set_sender_address(holders_[*sender_rank].address());
  header.set_sender_rank(*sender_rank);
  header.set_text(text);
  header.set_sent_at_nanos(at_nanos);
  command.targets = CurrentTargets();
  command.first = *sender_rank + 1;
  const uint64_t id = header.id();
  const auto recipients = static_cast<uint32_t>(command.targets->size() - command.first);
  command.states.assign(recipients, wire::DELIVERY_PENDING);
  command.pending = recipients;
  for (uint32_t i = 0; i < recipients; ++i) {
    pending_[(*command.targets)[command.first + i].recipient()].emplace_back(id, i);
  }
  if (!request_id.empty()) {
    by_request_[request_id] = id;
    request_order_.emplace_back(id, request_id);
    while (request_order_.size() > kKeptRequestIds) {
      by_request_.erase(request_order_.front().second);
      request_order_.pop_front();
    }
  }
  Keep(id, std::move(command));
  return id;
}

void RankState::DeliveredThrough(const std::string& recipient, uint64_t through) {
  auto pending = pending_.find(recipient);
  if (pending == pending_.end()) return;
  PendingDeliveries& deliveries = pending->second;
  auto end = deliveries.begin();
  for (; end != deliveries.end() && end->first <= through; ++end) {
    Settle(end->first, end->second, true, "");
  }
  deliveries.erase(deliveries.begin(), end);
}

void RankState::Settle(uint64_t command_id, uint32_t index, bool delivered,
                       const std::string& error) {
  auto it = commands_.find(command_id);
  if (it == commands_.end() || index >= it->second.states.size()) return;
  Command& command = it->second;
  if (command.states[index] != wire::DELIVERY_PENDING) return;
  command.states[index] = delivered ? wire::DELIVERED : wire::DELIVERY_FAILED;
  if (!delivered) command.errors[index] = error;
  --command.pending;
  if (command.pending == 0) MarkSettled(command_id);
}

size_t RankState::pending_count() const {
  size_t count = 0;
  for (const auto& [key, deliveries] : pending_) count += deliveries.size();
  return count;
}

void RankState::Keep(uint64_t id, Command command) {
  const bool settled = command.pending == 0;
  commands_[id] = std::move(command);
  if (settled) MarkSettled(id);
}

void RankState::MarkSettled(uint64_t id) {
  settled_.insert(id);
  while (settled_.size() > kKeptSettledCommands) {
    commands_.erase(*settled_.begin());
    settled_.erase(settled_.begin());
  }
}

bool RankState::IsSettled(const wire::CommandRecord& record) {
  return std::none_of(record.deliveries().begin(), record.deliveries().end(),
                      [](const wire::Delivery& d) { return d.state() == wire::DELIVERY_PENDING; });
}

std::optional<wire::CommandRecord> RankState::FindCommand(uint64_t id) const {
  auto it = commands_.find(id);
  if (it == commands_.end()) return std::nullopt;
  const Command& command = it->second;
  wire::CommandRecord record = command.header;
  record.mutable_deliveries()->Reserve(static_cast<int>(command.states.size()));
  for (uint32_t i = 0; i < command.states.size(); ++i) {
    wire::Delivery* delivery = record.add_deliveries();
    *delivery = (*command.targets)[command.first + i];
    delivery->set_state(command.states[i]);
    if (auto error = command.errors.find(i); error != command.errors.end()) {
      delivery->set_error(error->second);
    }
  }
  return record;
}

size_t RankState::RecipientCount(uint64_t id) const {
  auto it = commands_.find(id);
  return it == commands_.end() ? 0 : it->second.states.size();
}

const wire::CommandRecord* RankState::FindHeader(uint64_t id) const {
  auto it = commands_.find(id);
  return it == commands_.end() ? nullptr : &it->second.header;
}

const wire::Delivery* RankState::FindRecipient(uint64_t id, uint32_t index) const {
  auto it = commands_.find(id);
  if (it == commands_.end() || index >= it->second.states.size()) return nullptr;
  return &(*it->second.targets)[it->second.first + index];
}

bool RankState::AllPendingRecipients(
    uint64_t id, const std::function<bool(const wire::Delivery&)>& predicate) const {
  auto it = commands_.find(id);
  if (it == commands_.end()) return true;
  const Command& command = it->second;
  for (uint32_t i = 0; i < command.states.size(); ++i) {
    if (command.states[i] == wire::DELIVERY_PENDING &&
        !predicate((*command.targets)[command.first + i])) {
      return false;
    }
  }
  return true;
}

void RankState::SaveTo(wire::RanksSnapshot& snapshot) const {
  for (const auto& holder : holders_) *snapshot.add_ranks() = holder;
  for (const auto& [id, command] : commands_) *snapshot.add_commands() = *FindCommand(id);
  snapshot.set_next_command_id(next_command_id_);
  for (const auto& [id, request_id] : request_order_) {
    wire::SentRequest* sent = snapshot.add_recent_requests();
    sent->set_request_id(request_id);
    sent->set_command_id(id);
  }
}

Status RankState::LoadFrom(const wire::RanksSnapshot& snapshot, uint64_t ranks_version) {
  const uint64_t version = ranks_version;
  *this = RankState();
  holders_.assign(snapshot.ranks().begin(), snapshot.ranks().end());
  ranks_version_ = version;
  next_command_id_ = std::max<uint64_t>(1, snapshot.next_command_id());
  std::shared_ptr<Targets> previous;  // consecutive commands to the same holders share them
  for (const auto& record : snapshot.commands()) {
    if (record.id() == 0 || record.id() >= next_command_id_) {
      return Status::Invalid("ranks: snapshot holds a command with an impossible id " +
                             std::to_string(record.id()));
    }
    auto same_targets = [&record](const Targets& targets) {
      return std::equal(targets.begin(), targets.end(), record.deliveries().begin(),
                        record.deliveries().end(),
                        [](const wire::Delivery& a, const wire::Delivery& b) {
                          return a.recipient() == b.recipient() && a.kind() == b.kind() &&
                                 a.address() == b.address() && a.rank() == b.rank();
                        });
    };
    if (previous == nullptr || !same_targets(*previous)) {
      previous = std::make_shared<Targets>();
      for (const auto& delivery : record.deliveries()) {
        wire::Delivery& target = previous->emplace_back(delivery);
        target.clear_state();
        target.clear_error();
      }
    }
    Command command;
    command.header = record;
    command.header.clear_deliveries();
    command.targets = previous;
    for (uint32_t i = 0; i < static_cast<uint32_t>(record.deliveries_size()); ++i) {
      const wire::Delivery& delivery = record.deliveries(static_cast<int>(i));
      command.states.push_back(delivery.state());
      if (!delivery.error().empty()) command.errors[i] = delivery.error();
      if (delivery.state() == wire::DELIVERY_PENDING) {
        ++command.pending;
        pending_[delivery.recipient()].emplace_back(record.id(), i);  // ids ascend
      }
    }
    Keep(record.id(), std::move(command));
  }
  for (const auto& sent : snapshot.recent_requests()) {
    by_request_[sent.request_id()] = sent.command_id();
    request_order_.emplace_back(sent.command_id(), sent.request_id());
  }
  return Status::Ok();
}

}  // namespace synod

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
    const std::set<uint64_t> ids = pending->second;  // Settle() edits pending_
    for (uint64_t id : ids) Settle(id, key, false, reason);
  }
  return true;
}

std::optional<uint32_t> RankState::RankOf(const std::string& key) const {
  for (size_t i = 0; i < holders_.size(); ++i) {
    if (holders_[i].key() == key) return static_cast<uint32_t>(i);
  }
  return std::nullopt;
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

  wire::CommandRecord record;
  record.set_id(next_command_id_++);
  record.set_request_id(request_id);
  record.set_sender(sender);
  record.set_sender_address(holders_[*sender_rank].address());
  record.set_sender_rank(*sender_rank);
  record.set_text(text);
  record.set_sent_at_nanos(at_nanos);
  for (size_t rank = *sender_rank + 1; rank < holders_.size(); ++rank) {
    const wire::RankHolder& holder = holders_[rank];
    wire::Delivery* delivery = record.add_deliveries();
    delivery->set_recipient(holder.key());
    delivery->set_kind(holder.kind());
    delivery->set_address(holder.address());
    delivery->set_rank(static_cast<uint32_t>(rank));
    delivery->set_state(wire::DELIVERY_PENDING);
    pending_[holder.key()].insert(record.id());
  }
  const uint64_t id = record.id();
  if (!request_id.empty()) {
    by_request_[request_id] = id;
    request_order_.emplace_back(id, request_id);
    while (request_order_.size() > kKeptRequestIds) {
      by_request_.erase(request_order_.front().second);
      request_order_.pop_front();
    }
  }
  const wire::CommandRecord& stored = commands_[id] = std::move(record);
  MarkSettledIfDone(stored);
  return id;
}

void RankState::DeliveredThrough(const std::string& recipient, uint64_t through) {
  auto pending = pending_.find(recipient);
  if (pending == pending_.end()) return;
  std::vector<uint64_t> delivered;
  for (uint64_t id : pending->second) {
    if (id > through) break;
    delivered.push_back(id);
  }
  for (uint64_t id : delivered) Settle(id, recipient, true, "");
}

void RankState::Settle(uint64_t command_id, const std::string& recipient, bool delivered,
                       const std::string& error) {
  auto record = commands_.find(command_id);
  if (record == commands_.end()) return;
  for (wire::Delivery& delivery : *record->second.mutable_deliveries()) {
    if (delivery.recipient() != recipient || delivery.state() != wire::DELIVERY_PENDING) continue;
    delivery.set_state(delivered ? wire::DELIVERED : wire::DELIVERY_FAILED);
    delivery.set_error(delivered ? "" : error);
    auto pending = pending_.find(recipient);
    if (pending != pending_.end()) {
      pending->second.erase(command_id);
      if (pending->second.empty()) pending_.erase(pending);
    }
    MarkSettledIfDone(record->second);
    return;
  }
}

void RankState::MarkSettledIfDone(const wire::CommandRecord& record) {
  if (!IsSettled(record)) return;
  settled_.insert(record.id());
  while (settled_.size() > kKeptSettledCommands) {
    commands_.erase(*settled_.begin());
    settled_.erase(settled_.begin());
  }
}

bool RankState::IsSettled(const wire::CommandRecord& record) {
  return std::none_of(record.deliveries().begin(), record.deliveries().end(),
                      [](const wire::Delivery& d) { return d.state() == wire::DELIVERY_PENDING; });
}

const wire::CommandRecord* RankState::FindCommand(uint64_t id) const {
  auto it = commands_.find(id);
  return it == commands_.end() ? nullptr : &it->second;
}

void RankState::SaveTo(wire::ClusterSnapshot& snapshot) const {
  for (const auto& holder : holders_) *snapshot.add_ranks() = holder;
  for (const auto& [id, record] : commands_) *snapshot.add_commands() = record;
  snapshot.set_next_command_id(next_command_id_);
  for (const auto& [id, request_id] : request_order_) {
    wire::SentRequest* sent = snapshot.add_recent_requests();
    sent->set_request_id(request_id);
    sent->set_command_id(id);
  }
}

Status RankState::LoadFrom(const wire::ClusterSnapshot& snapshot) {
  const uint64_t version = ranks_version_ + 1;
  *this = RankState();
  holders_.assign(snapshot.ranks().begin(), snapshot.ranks().end());
  ranks_version_ = version;
  next_command_id_ = std::max<uint64_t>(1, snapshot.next_command_id());
  for (const auto& record : snapshot.commands()) {
    if (record.id() == 0 || record.id() >= next_command_id_) {
      return Status::Error("snapshot holds a command with an impossible id " +
                           std::to_string(record.id()));
    }
    commands_[record.id()] = record;
    for (const auto& delivery : record.deliveries()) {
      if (delivery.state() == wire::DELIVERY_PENDING) {
        pending_[delivery.recipient()].insert(record.id());
      }
    }
    if (IsSettled(record)) settled_.insert(record.id());
  }
  for (const auto& sent : snapshot.recent_requests()) {
    by_request_[sent.request_id()] = sent.command_id();
    request_order_.emplace_back(sent.command_id(), sent.request_id());
  }
  return Status::Ok();
}

}  // namespace synod

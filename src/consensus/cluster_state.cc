#include "consensus/cluster_state.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>

namespace synod {
namespace {

wire::CommandResult Ok(std::string value = "") {
  wire::CommandResult result;
  result.set_ok(true);
  result.set_value(std::move(value));
  return result;
}

wire::CommandResult Error(std::string message) {
  wire::CommandResult result;
  result.set_ok(false);
  result.set_error(std::move(message));
  return result;
}

// Where a member's commands go, and how it is shown in the rank list.
std::string MemberAddress(const wire::MemberRecord& member) {
  return member.ip() + ":" + std::to_string(member.api_port());
}

constexpr size_t kMaxKeyBytes = 1024;
constexpr size_t kMaxValueBytes = 512 * 1024;

}  // namespace

std::string EncodeCommands(const std::vector<wire::Command>& commands) {
  wire::CommandBatch batch;
  batch.set_version(kCommandBatchVersion);
  for (const auto& command : commands) *batch.add_commands() = command;
  return batch.SerializeAsString();
}

std::string ClusterState::ApplyEntry(std::string_view entry) {
  wire::BatchResult batch;
  for (auto& result : Apply(entry)) *batch.add_results() = std::move(result);
  return batch.SerializeAsString();
}

void ClusterState::NotifyChange() const {
  for (const auto& listener : change_listeners_) listener();
}

std::vector<wire::CommandResult> ClusterState::Apply(std::string_view entry) {
  wire::CommandBatch batch;
  if (!batch.ParseFromArray(entry.data(), static_cast<int>(entry.size()))) {
    return {Error("undecodable log entry")};
  }
  if (batch.version() != kCommandBatchVersion) {
    // Written by a newer Synod: applying part of it would diverge, so apply none of it.
    return std::vector<wire::CommandResult>(
        std::max(1, batch.commands_size()),
        Error("log entry version " + std::to_string(batch.version()) + " is not supported"));
  }
  std::vector<wire::CommandResult> results;
  results.reserve(batch.commands_size());
  for (const auto& command : batch.commands()) results.push_back(ApplyOne(command));
  NotifyChange();
  return results;
}

wire::CommandResult ClusterState::ApplyOne(const wire::Command& command) {
  ++commands_applied_;
  switch (command.body_case()) {
    case wire::Command::kFoundCluster: {
      if (!cluster_id_.empty()) return Error("cluster already founded as " + cluster_id_);
      if (command.found_cluster().cluster_id().empty()) return Error("empty cluster id");
      cluster_id_ = command.found_cluster().cluster_id();
      return Ok(cluster_id_);
    }
    case wire::Command::kMemberJoin: {
      const wire::MemberRecord& incoming = command.member_join().member();
      if (incoming.id().empty() || incoming.raft_id() == 0) return Error("member without id");
      auto it = members_.find(incoming.id());
      if (it != members_.end() && it->second.state() != wire::LEFT) {
        // A rejoin after a restart: same identity, new addresses, same rank.
        wire::MemberRecord& existing = it->second;
        existing.set_name(incoming.name());
        existing.set_ip(incoming.ip());
        existing.set_api_port(incoming.api_port());
        existing.set_peer_port(incoming.peer_port());
        existing.set_raft_port(incoming.raft_port());
        existing.set_role(incoming.role());
        existing.set_state(wire::ALIVE);
        existing.set_last_heartbeat_nanos(command.at_nanos());
        // Keeps its rank, or, if it was declared dead meanwhile, is ranked last again.
        ranks_.Assign(wire::MEMBER_RANK, existing.id(), MemberAddress(existing),
                      command.at_nanos());
        return Ok(existing.id());
      }
      wire::MemberRecord record = incoming;
      record.set_state(wire::ALIVE);
      record.set_joined_at_nanos(command.at_nanos());
      record.set_last_heartbeat_nanos(command.at_nanos());
      record.set_join_order(next_join_order_++);
      members_[record.id()] = record;
      ranks_.Assign(wire::MEMBER_RANK, record.id(), MemberAddress(record), command.at_nanos());
      return Ok(record.id());
    }
    case wire::Command::kMemberRole: {
      auto it = members_.find(command.member_role().id());
      if (it == members_.end()) return Error("no member " + command.member_role().id());
      it->second.set_role(command.member_role().role());
      return Ok();
    }
    case wire::Command::kMemberLiveness: {
      for (const auto& entry : command.member_liveness().entries()) {
        auto it = members_.find(entry.id());
        if (it == members_.end() || it->second.state() == wire::LEFT) continue;
        const bool was_dead = it->second.state() == wire::DEAD;
        const bool is_dead = entry.state() == wire::DEAD;
        if (is_dead && !was_dead) ranks_.Unassign(entry.id(), "declared dead");
        if (was_dead && !is_dead) {
          ranks_.Assign(wire::MEMBER_RANK, entry.id(), MemberAddress(it->second),
                        command.at_nanos());
        }
        it->second.set_state(entry.state());
        it->second.set_last_heartbeat_nanos(entry.last_heartbeat_nanos());
      }
      return Ok();
    }
    case wire::Command::kMemberLeave: {
      auto it = members_.find(command.member_leave().id());
      if (it == members_.end()) return Error("no member " + command.member_leave().id());
      it->second.set_state(wire::LEFT);
      it->second.set_role(wire::SPARE);
      ranks_.Unassign(it->first, "left the cluster");
      return Ok();
    }
    case wire::Command::kChooseMaster: {
      const std::string& id = command.choose_master().id();
      if (!id.empty() && members_.find(id) == members_.end()) return Error("no member " + id);
      if (id != master_id_) master_since_nanos_ = command.at_nanos();
      master_id_ = id;
      return Ok(id);
    }
    case wire::Command::kKvPut: {
      const auto& put = command.kv_put();
      if (put.key().empty() || put.key().size() > kMaxKeyBytes) {
        return Error("key must be 1-1024 bytes");
      }
      if (put.value().size() > kMaxValueBytes) return Error("value exceeds 512 KiB");
      kv_[put.key()] = put.value();
      return Ok();
    }
    case wire::Command::kKvDelete: {
      return kv_.erase(command.kv_delete().key()) ? Ok() : Error("no such key");
    }
    case wire::Command::kAssignRank:
    case wire::Command::kUnassignRank:
    case wire::Command::kSendCommand:
    case wire::Command::kDeliveryProgress:
      return ApplyRanks(command);
    case wire::Command::BODY_NOT_SET:
      break;
  }
  return Error("unknown command kind");
}

wire::CommandResult ClusterState::ApplyRanks(const wire::Command& command) {
  switch (command.body_case()) {
    case wire::Command::kAssignRank: {
      Result<std::string> key = NormalizeExternalAddress(command.assign_rank().address());
      if (!key.ok()) return Error(key.error());
      const wire::MemberRecord* member = nullptr;
      for (const auto& [id, record] : members_) {
        if (MemberAddress(record) == key.value() && record.state() != wire::LEFT) member = &record;
      }
      if (member != nullptr) {
        // A member's own address: it is ranked as a member, or not at all while dead.
        auto rank = ranks_.RankOf(member->id());
        if (!rank) return Error(key.value() + " is a member that is not ranked now");
        return Ok(std::to_string(*rank));
      }
      return Ok(std::to_string(ranks_.Assign(wire::EXTERNAL_RANK, key.value(),
                                             command.assign_rank().address(), command.at_nanos())));
    }
    case wire::Command::kUnassignRank: {
      Result<std::string> key = NormalizeExternalAddress(command.unassign_rank().address());
      if (!key.ok()) return Error(key.error());
      const std::string& reason = command.unassign_rank().reason();
      const bool was_ranked = ranks_.Unassign(key.value(), reason.empty() ? "unassigned" : reason);
      return Ok(was_ranked ? "unassigned" : "not ranked");
    }
    case wire::Command::kSendCommand: {
      const auto& send = command.send_command();
      Result<uint64_t> id =
          ranks_.AddCommand(send.request_id(), send.sender(), send.text(), command.at_nanos());
      if (!id.ok()) return Error(id.error());
      return Ok(std::to_string(id.value()));
    }
    case wire::Command::kDeliveryProgress: {
      for (const auto& progress : command.delivery_progress().recipients()) {
        ranks_.DeliveredThrough(progress.recipient(), progress.through());
      }
      return Ok();
    }
    default:
      break;
  }
  return Error("not a ranks command");
}

std::string ClusterState::Snapshot() const {
  wire::ClusterSnapshot snapshot;
  snapshot.set_version(kSnapshotVersion);
  snapshot.set_cluster_id(cluster_id_);
  for (const auto& [id, member] : members_) *snapshot.add_members() = member;
  // Deterministic serialization: maps are emitted in key order.
  for (const auto& [key, value] : kv_) (*snapshot.mutable_kv())[key] = value;
  snapshot.set_next_join_order(next_join_order_);
  snapshot.set_commands_applied(commands_applied_);
  snapshot.set_master_id(master_id_);
  snapshot.set_master_since_nanos(master_since_nanos_);
  ranks_.SaveTo(snapshot);
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  snapshot.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

Status ClusterState::Restore(std::string_view data) {
  wire::ClusterSnapshot snapshot;
  if (!snapshot.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return Status::Error("undecodable snapshot");
  }
  if (snapshot.version() != kSnapshotVersion) {
    return Status::Error("snapshot version " + std::to_string(snapshot.version()) +
                         " is not supported");
  }
  cluster_id_ = snapshot.cluster_id();
  members_.clear();
  for (const auto& member : snapshot.members()) members_[member.id()] = member;
  kv_.clear();
  for (const auto& [key, value] : snapshot.kv()) kv_[key] = value;
  next_join_order_ = snapshot.next_join_order();
  commands_applied_ = snapshot.commands_applied();
  master_id_ = snapshot.master_id();
  master_since_nanos_ = snapshot.master_since_nanos();
  Status ranks = ranks_.LoadFrom(snapshot);
  NotifyChange();
  return ranks;
}

std::vector<const wire::MemberRecord*> ClusterState::MembersInJoinOrder() const {
  std::vector<const wire::MemberRecord*> list;
  for (const auto& [id, member] : members_) list.push_back(&member);
  std::sort(list.begin(), list.end(),
            [](auto* a, auto* b) { return a->join_order() < b->join_order(); });
  return list;
}

const wire::MemberRecord* ClusterState::FindMember(const std::string& id) const {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : &it->second;
}

const wire::MemberRecord* ClusterState::FindMemberByRaftId(uint64_t raft_id) const {
  for (const auto& [id, member] : members_) {
    if (member.raft_id() == raft_id) return &member;
  }
  return nullptr;
}

std::optional<std::string> ClusterState::Get(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return std::nullopt;
  return it->second;
}

}  // namespace synod

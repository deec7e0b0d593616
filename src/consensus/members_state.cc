#include "consensus/members_state.h"

#include <algorithm>

namespace synod {

Proposal MembersState::Found(const std::string& cluster_id) {
  wire::MembersCommand command;
  command.mutable_found_cluster()->set_cluster_id(cluster_id);
  return MakeProposal(kName, command);
}

Proposal MembersState::Join(const wire::MemberRecord& member) {
  wire::MembersCommand command;
  *command.mutable_member_join()->mutable_member() = member;
  return MakeProposal(kName, command);
}

Proposal MembersState::SetRole(const std::string& id, wire::Role role) {
  wire::MembersCommand command;
  command.mutable_member_role()->set_id(id);
  command.mutable_member_role()->set_role(role);
  return MakeProposal(kName, command);
}

Proposal MembersState::Liveness(const wire::MemberLiveness& liveness) {
  wire::MembersCommand command;
  *command.mutable_member_liveness() = liveness;
  return MakeProposal(kName, command);
}

Proposal MembersState::Leave(const std::string& id) {
  wire::MembersCommand command;
  command.mutable_member_leave()->set_id(id);
  return MakeProposal(kName, command);
}

nlohmann::json MemberSummaryJson(const wire::MemberRecord& member) {
  return {{"id", member.id()}, {"name", member.name()}, {"ip", member.ip()}};
}

void MembersState::Publish(MemberEvent::Kind kind, const wire::MemberRecord& member,
                           int64_t at) const {
  const MemberEvent event{kind, member, at};
  for (const auto& listener : listeners_) listener(event);
}

Result<std::string> MembersState::Apply(const ApplyContext& context, uint32_t,
                                        std::string_view bytes) {
  wire::MembersCommand command;
  if (!command.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::Invalid("members: undecodable command");
  }
  const int64_t at = context.at_nanos;
  switch (command.body_case()) {
    case wire::MembersCommand::kFoundCluster: {
      if (!cluster_id_.empty())
        return Status::Conflict("cluster already founded as " + cluster_id_);
      if (command.found_cluster().cluster_id().empty()) return Status::Invalid("empty cluster id");
      cluster_id_ = command.found_cluster().cluster_id();
      return cluster_id_;
    }
    case wire::MembersCommand::kMemberJoin: {
      const wire::MemberRecord& incoming = command.member_join().member();
      if (incoming.id().empty() || incoming.raft_id() == 0) {
        return Status::Invalid("member without id");
      }
      auto it = members_.find(incoming.id());
      if (it != members_.end() && it->second.state() != wire::LEFT) {
        // A rejoin after a restart: same identity, new addresses, same place.
        wire::MemberRecord& existing = it->second;
        existing.set_name(incoming.name());
        existing.set_ip(incoming.ip());
        existing.set_api_port(incoming.api_port());
        existing.set_peer_port(incoming.peer_port());
        existing.set_raft_port(incoming.raft_port());
        existing.set_role(incoming.role());
        *existing.mutable_modules() = incoming.modules();
        existing.set_state(wire::ALIVE);
        existing.set_last_heartbeat_nanos(at);
        Publish(MemberEvent::Kind::kRejoined, existing, at);
        return existing.id();
      }
      wire::MemberRecord& record = members_[incoming.id()];
      record = incoming;
      record.set_state(wire::ALIVE);
      record.set_joined_at_nanos(at);
      record.set_last_heartbeat_nanos(at);
      record.set_join_order(next_join_order_++);
      Publish(MemberEvent::Kind::kJoined, record, at);
      return record.id();
    }
    case wire::MembersCommand::kMemberRole: {
      auto it = members_.find(command.member_role().id());
      if (it == members_.end()) return Status::NotFound("no member " + command.member_role().id());
      it->second.set_role(command.member_role().role());
      return std::string();
    }
    case wire::MembersCommand::kMemberLiveness: {
      for (const auto& entry : command.member_liveness().entries()) {
        auto it = members_.find(entry.id());
        if (it == members_.end() || it->second.state() == wire::LEFT) continue;
        const wire::MemberState was = it->second.state();
        const bool was_dead = was == wire::DEAD;
        const bool is_dead = entry.state() == wire::DEAD;
        it->second.set_state(entry.state());
        it->second.set_last_heartbeat_nanos(entry.last_heartbeat_nanos());
        if (is_dead && !was_dead) Publish(MemberEvent::Kind::kDead, it->second, at);
        if (was_dead && !is_dead) Publish(MemberEvent::Kind::kRevived, it->second, at);
        if (was == wire::ALIVE && entry.state() == wire::SUSPECT) {
          Publish(MemberEvent::Kind::kSuspect, it->second, at);
        }
        if (was == wire::SUSPECT && entry.state() == wire::ALIVE) {
          Publish(MemberEvent::Kind::kRecovered, it->second, at);
        }
      }
      return std::string();
    }
    case wire::MembersCommand::kMemberLeave: {
      auto it = members_.find(command.member_leave().id());
      if (it == members_.end()) return Status::NotFound("no member " + command.member_leave().id());
      it->second.set_state(wire::LEFT);
      it->second.set_role(wire::SPARE);
      Publish(MemberEvent::Kind::kLeft, it->second, at);
      return std::string();
    }
    case wire::MembersCommand::BODY_NOT_SET:
      break;
  }
  return Status::Invalid("members: unknown command kind");
}

std::unique_ptr<SectionCapture> MembersState::Capture() const {
  // A few records per member: built here, at once.
  auto capture = std::make_unique<BufferedCapture>();
  wire::MembersHeader header;
  header.set_cluster_id(cluster_id_);
  header.set_next_join_order(next_join_order_);
  capture->AddMessage(header);
  for (const auto& [id, member] : members_) capture->AddMessage(member);
  return capture;
}

class MembersState::Loader final : public SectionLoader {
 public:
  explicit Loader(MembersState& state) : state_(state) {}
  Status Add(std::string_view record) override {
    if (!header_read_) {
      header_read_ = true;
      if (!header_.ParseFromArray(record.data(), static_cast<int>(record.size()))) {
        return Status::Invalid("members: undecodable section header");
      }
      return Status::Ok();
    }
    wire::MemberRecord member;
    if (!member.ParseFromArray(record.data(), static_cast<int>(record.size())) ||
        member.id().empty()) {
      return Status::Invalid("members: undecodable member record");
    }
    const std::string id = member.id();
    if (!members_.emplace(id, std::move(member)).second) {
      return Status::Invalid("members: member " + id + " twice");
    }
    return Status::Ok();
  }
  void Install() override {
    state_.cluster_id_ = header_.cluster_id();
    state_.next_join_order_ = header_.next_join_order();
    state_.members_ = std::move(members_);
  }

 private:
  MembersState& state_;
  bool header_read_ = false;
  wire::MembersHeader header_;
  std::map<std::string, wire::MemberRecord> members_;
};

std::unique_ptr<SectionLoader> MembersState::NewLoader(uint32_t) {
  return std::make_unique<Loader>(*this);
}

std::vector<const wire::MemberRecord*> MembersState::MembersInJoinOrder() const {
  std::vector<const wire::MemberRecord*> list;
  list.reserve(members_.size());
  for (const auto& [id, member] : members_) list.push_back(&member);
  std::sort(list.begin(), list.end(),
            [](auto* a, auto* b) { return a->join_order() < b->join_order(); });
  return list;
}

const wire::MemberRecord* MembersState::FindMember(const std::string& id) const {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : &it->second;
}

const wire::MemberRecord* MembersState::FindMemberByRaftId(uint64_t raft_id) const {
  for (const auto& [id, member] : members_) {
    if (member.raft_id() == raft_id) return &member;
  }
  return nullptr;
}

uint32_t MembersState::FeatureLevel(const std::string& module) const {
  uint32_t level = 0;
  bool any = false;
  for (const auto& [id, member] : members_) {
    if (member.state() == wire::LEFT) continue;
    auto it = member.modules().find(module);
    const uint32_t version = it == member.modules().end() ? 0 : it->second;
    level = any ? std::min(level, version) : version;
    any = true;
  }
  return level;
}

}  // namespace synod

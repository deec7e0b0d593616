#include "ranks/rank_module.h"

namespace synod {

std::string MemberCommandAddress(const wire::MemberRecord& member) {
  return member.ip() + ":" + std::to_string(member.api_port());
}

RankModule::RankModule(MembersState& members) : members_(members) {
  members.Subscribe([this](const MemberEvent& event) { OnMemberEvent(event); });
}

Proposal RankModule::Make(const wire::RanksCommand& command) {
  return MakeProposal(kName, command);
}

void RankModule::OnMemberEvent(const MemberEvent& event) {
  const wire::MemberRecord& member = event.member;
  switch (event.kind) {
    case MemberEvent::Kind::kJoined:
    case MemberEvent::Kind::kRejoined:  // keeps its rank, or is ranked last if it had none
    case MemberEvent::Kind::kRevived:
      ranks_.Assign(wire::MEMBER_RANK, member.id(), MemberCommandAddress(member), event.at_nanos);
      return;
    case MemberEvent::Kind::kDead:
      ranks_.Unassign(member.id(), "declared dead");
      return;
    case MemberEvent::Kind::kSuspect:
    case MemberEvent::Kind::kRecovered:
      break;
    case MemberEvent::Kind::kLeft:
      ranks_.Unassign(member.id(), "left the cluster");
      return;
  }
}

Result<std::string> RankModule::Apply(const ApplyContext& context, uint32_t,
                                      std::string_view bytes) {
  wire::RanksCommand command;
  if (!command.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::Invalid("ranks: undecodable command");
  }
  switch (command.body_case()) {
    case wire::RanksCommand::kAssignRank: {
      Result<std::string> key = NormalizeExternalAddress(command.assign_rank().address());
      if (!key.ok()) return Status::Invalid(key.error());
      const wire::MemberRecord* member = nullptr;
      for (const auto* record : members_.MembersInJoinOrder()) {
        if (MemberCommandAddress(*record) == key.value() && record->state() != wire::LEFT) {
          member = record;
        }
      }
      if (member != nullptr) {
        // A member's own address: it is ranked as a member, or not at all while dead.
        auto rank = ranks_.RankOf(member->id());
        if (!rank) return Status::Conflict(key.value() + " is a member that is not ranked now");
        return std::to_string(*rank);
      }
      return std::to_string(ranks_.Assign(wire::EXTERNAL_RANK, key.value(),
                                          command.assign_rank().address(), context.at_nanos));
    }
    case wire::RanksCommand::kUnassignRank: {
      Result<std::string> key = NormalizeExternalAddress(command.unassign_rank().address());
      if (!key.ok()) return Status::Invalid(key.error());
      const std::string& reason = command.unassign_rank().reason();
      const bool was_ranked = ranks_.Unassign(key.value(), reason.empty() ? "unassigned" : reason);
      return std::string(was_ranked ? "unassigned" : "not ranked");
    }
    case wire::RanksCommand::kSendCommand: {
      const auto& send = command.send_command();
      Result<uint64_t> id =
          ranks_.AddCommand(send.request_id(), send.sender(), send.text(), context.at_nanos);
      if (!id.ok()) return Status::Invalid(id.error());
      return std::to_string(id.value());
    }
    case wire::RanksCommand::kDeliveryProgress: {
      for (const auto& progress : command.delivery_progress().recipients()) {
        ranks_.DeliveredThrough(progress.recipient(), progress.through());
      }
      return std::string();
    }
    case wire::RanksCommand::BODY_NOT_SET:
      break;
  }
  return Status::Invalid("ranks: unknown command kind");
}

std::unique_ptr<SectionCapture> RankModule::Capture() const {
  auto capture = std::make_unique<BufferedCapture>();
  wire::RanksSnapshot snapshot;
  ranks_.SaveTo(snapshot);
  capture->AddMessage(snapshot);
  return capture;
}

std::unique_ptr<SectionLoader> RankModule::NewLoader(uint32_t) {
  class Loader final : public SectionLoader {
   public:
    explicit Loader(RankModule& module) : module_(module) {}
    Status Add(std::string_view record) override {
      if (records_++ > 0) return Status::Invalid("ranks: more than one record");
      wire::RanksSnapshot snapshot;
      if (!snapshot.ParseFromArray(record.data(), static_cast<int>(record.size()))) {
        return Status::Invalid("ranks: undecodable record");
      }
      return staged_.LoadFrom(snapshot, module_.ranks_.ranks_version() + 1);
    }
    Status Finish() override {
      // No section: an empty state, still a new rank list version.
      if (records_ == 0) return staged_.LoadFrom({}, module_.ranks_.ranks_version() + 1);
      return Status::Ok();
    }
    void Install() override { module_.ranks_ = std::move(staged_); }

   private:
    RankModule& module_;
    int records_ = 0;
    RankState staged_;
  };
  return std::make_unique<Loader>(*this);
}

}  // namespace synod

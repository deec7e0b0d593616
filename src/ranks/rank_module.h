// RankModule: the "ranks" state module: applies rank and command operations to a RankState
// and keeps members ranked as the members module reports them joining, dying and leaving.
//
// Depends on the members module (ranks -> members, never the other way round): a member is
// ranked when it joins or comes back, and unranked when declared dead or when it leaves; an
// external client may not claim a member's address. Its snapshot section is one RanksSnapshot
// record, built when captured: the state is bounded (settled commands and request ids are
// pruned), so the capture stays small. Pure and deterministic; loop thread only.
#pragma once

#include <string>

#include "consensus/members_state.h"
#include "consensus/state_module.h"
#include "proto/ranks.pb.h"
#include "ranks/rank_state.h"

namespace synod {

// Where a member's commands go, and how it is shown in the rank list.
std::string MemberCommandAddress(const wire::MemberRecord& member);

class RankModule final : public StateModule {
 public:
  static constexpr std::string_view kName = "ranks";

  // Subscribes to `members`, which must outlive this module.
  explicit RankModule(MembersState& members);

  static Proposal Make(const wire::RanksCommand& command);

  const RankState& ranks() const { return ranks_; }

  // StateModule.
  std::string_view name() const override { return kName; }
  Result<std::string> Apply(const ApplyContext& context, uint32_t version,
                            std::string_view command) override;
  std::unique_ptr<SectionCapture> Capture() const override;
  std::unique_ptr<SectionLoader> NewLoader(uint32_t version) override;

 private:
  void OnMemberEvent(const MemberEvent& event);

  const MembersState& members_;
  RankState ranks_;
};

}  // namespace synod

// MasterClockState: the "clock" state module: which member's clock is the cluster's master,
// and since when. The leader's ClockService proposes the choice; every node follows it.
// Pure and deterministic; loop thread only.
#pragma once

#include <string>

#include "consensus/members_state.h"
#include "consensus/state_module.h"

namespace synod {

class MasterClockState final : public StateModule {
 public:
  static constexpr std::string_view kName = "clock";

  // `members` must outlive this module: a master must be a member.
  explicit MasterClockState(const MembersState& members) : members_(members) {}

  // An empty id clears the choice.
  static Proposal Choose(const std::string& id, const std::string& reason);

  const std::string& master_id() const { return master_id_; }
  int64_t master_since_nanos() const { return master_since_nanos_; }

  // StateModule.
  std::string_view name() const override { return kName; }
  Result<std::string> Apply(const ApplyContext& context, uint32_t version,
                            std::string_view command) override;
  std::unique_ptr<SectionCapture> Capture() const override;
  std::unique_ptr<SectionLoader> NewLoader(uint32_t version) override;

 private:
  const MembersState& members_;
  std::string master_id_;
  int64_t master_since_nanos_ = 0;
};

}  // namespace synod

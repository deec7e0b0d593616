// MembersState: the "members" state module: the cluster id and the member records.
//
// Members are recorded in join order (join_order 0 first) and keep their record when they
// leave (state LEFT). Other modules learn of changes through events published while the entry
// is applied (same order on every node): a module that subscribes may change only its own
// state in response. A node's record lists the state modules (and versions) it runs, from
// which the cluster's feature level of each module is derived.
// Pure and deterministic; loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "consensus/state_module.h"
#include "proto/consensus.pb.h"

namespace synod {

// {"id", "name", "ip"}: how events and APIs name a member.
nlohmann::json MemberSummaryJson(const wire::MemberRecord& member);

struct MemberEvent {
  enum class Kind {
    kJoined,     // a new member, or one that left and came back
    kRejoined,   // a member restarted and asked again: same identity, maybe new addresses
    kDead,       // declared dead by the leader
    kRevived,    // heard from again after being declared dead
    kSuspect,    // silent for a while: not dead yet
    kRecovered,  // heard from again while suspect
    kLeft,       // left the cluster
  };
  Kind kind;
  const wire::MemberRecord& member;
  int64_t at_nanos;  // the entry's time
};

class MembersState final : public StateModule {
 public:
  static constexpr std::string_view kName = "members";

  // Command builders, for proposals.
  static Proposal Found(const std::string& cluster_id);
  static Proposal Join(const wire::MemberRecord& member);
  static Proposal SetRole(const std::string& id, wire::Role role);
  static Proposal Liveness(const wire::MemberLiveness& liveness);
  static Proposal Leave(const std::string& id);

  // Listeners run inside Apply(), in the order they subscribed.
  void Subscribe(std::function<void(const MemberEvent&)> listener) {
    listeners_.push_back(std::move(listener));
  }

  const std::string& cluster_id() const { return cluster_id_; }
  // Members in join order, those that left included.
  std::vector<const wire::MemberRecord*> MembersInJoinOrder() const;
  const wire::MemberRecord* FindMember(const std::string& id) const;
  const wire::MemberRecord* FindMemberByRaftId(uint64_t raft_id) const;
  // The newest version of `module` that every member that has not left runs (0 if one does
  // not run it at all).
  uint32_t FeatureLevel(const std::string& module) const;

  // StateModule.
  std::string_view name() const override { return kName; }
  Result<std::string> Apply(const ApplyContext& context, uint32_t version,
                            std::string_view command) override;
  std::unique_ptr<SectionCapture> Capture() const override;
  std::unique_ptr<SectionLoader> NewLoader(uint32_t version) override;

 private:
  class Loader;
  void Publish(MemberEvent::Kind kind, const wire::MemberRecord& member, int64_t at) const;

  std::string cluster_id_;
  std::map<std::string, wire::MemberRecord> members_;  // by node id
  uint64_t next_join_order_ = 0;
  std::vector<std::function<void(const MemberEvent&)>> listeners_;
};

}  // namespace synod

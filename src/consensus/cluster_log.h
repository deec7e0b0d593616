// ClusterLog: what a feature's service uses of consensus, and nothing more.
//
// A feature registers its state module, proposes commands to it, learns when the replicated
// state changed, and asks who leads and who the members are. ConsensusService is the one an
// agent runs. A simulation puts an in-memory log behind this interface (see
// timers/timer_service_simulation_test.cc), so that a feature's service, on a ManualScheduler,
// can be tested on virtual time: crashes, restarts and slow commits, deterministically.
// Loop thread only; callbacks run on the loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "consensus/members_state.h"
#include "consensus/state_module.h"
#include "core/status.h"
#include "net/ipv4.h"

namespace synod {

class ClusterLog {
 public:
  using ProposeCallback = std::function<void(Result<Committed>)>;

  virtual ~ClusterLog() = default;

  // Adds a feature's state module; before the log starts. The module must outlive the log.
  virtual void RegisterModule(StateModule& module) = 0;
  // Runs after every applied log entry and every restored snapshot.
  virtual void AddStateListener(std::function<void()> listener) = 0;
  // Proposes an operation through the leader; `done` runs once, with the committed result,
  // the module's refusal, or why it was not (or may not have been) committed (see Proposer).
  // Without a request id, one is generated.
  virtual void Propose(Proposal proposal, ProposeCallback done) = 0;
  // A request id unique to this proposal (node, boot and counter).
  virtual std::string NewRequestId() = 0;
  // Calls `done` with Ok once this node's copy of the state holds every write acknowledged
  // before the call, or with the reason it cannot tell (see ReadGate).
  virtual void ConfirmRead(std::function<void(Status)> done) = 0;

  virtual const MembersState& members() const = 0;
  // The Raft term this node knows.
  virtual uint64_t term() const = 0;
  // The leader's peer address, if there is a leader.
  virtual std::optional<Ipv4> LeaderAddress() const = 0;
  virtual bool IsLeader() const = 0;
};

}  // namespace synod

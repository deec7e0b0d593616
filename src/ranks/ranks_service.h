// RanksService: ranks and commands on one node.
//
// Every node: takes rank and command requests (the seed's HTTP API and the native one) and
// carries them to the leader; receives the commands delivered to this member, each once, keeps
// them in its CommandInbox, logs them and runs the --on-command program. On the leader: commits
// each command (a retried request keeps its request id, so it is committed once), lets the
// Courier deliver it, and answers the sender once every delivery is acknowledged or settled (or the
// send timeout passes, with the deliveries still pending marked so). The leader also logs every
// change of the rank list as a table, as the seed's server printed it. Loop thread only.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "consensus/consensus_service.h"
#include "core/clock.h"
#include "core/event_loop.h"
#include "peer/peer_service.h"
#include "ranks/command_inbox.h"
#include "ranks/command_runner.h"
#include "ranks/courier.h"

namespace synod {

struct RanksOptions {
  std::string self_id;
  std::string data_dir;    // holds the inbox journal
  std::string on_command;  // program run for each received command; empty: only logged
  std::chrono::milliseconds on_command_timeout{10'000};
  CourierOptions courier;
  // How long a sender waits for every delivery to settle.
  std::chrono::milliseconds send_timeout{30'000};
  bool demo_commands = false;  // send a random *_TRANSMIT command every 10-60 s
  EventSink events;            // told of commands committed and settled
};

// What a sender learns. `status` is an HTTP status: 200 with the record (deliveries possibly
// still pending if the send timeout passed), 400 when the request was at fault, 503 when the
// cluster could not take it.
struct SendOutcome {
  int status = 200;
  std::string error;
  wire::CommandRecord record;
};

class RanksService {
 public:
  RanksService(EventLoop& loop, const Clock& clock, PeerService& peers, ConsensusService& consensus,
               RanksOptions options);
  ~RanksService();

  // Opens the inbox journal; errors name the file.
  Status Start();
  void Stop();

  // Ranks an external client (idempotently); `done` gets its rank, or a 400/503 error.
  void AssignExternal(const std::string& ip_port, std::function<void(int, nlohmann::json)> done);
  void UnassignExternal(const std::string& ip_port, std::function<void(int, nlohmann::json)> done);
  // Sends `text` from the holder with key `sender` to every holder ranked after it.
  void Send(const std::string& sender, const std::string& text,
            std::function<void(SendOutcome)> done);
  // The holder key for a seed client's ip_port (an external client or a member's ip:api_port).
  Result<std::string> SenderFor(const std::string& ip_port) const;
  const std::string& self_key() const { return options_.self_id; }
  // Every command id up to this one has reached this member.
  uint64_t received_through() const { return inbox_ ? inbox_->received_through() : 0; }
  // The replicated rank list and commands.
  const RankState& rank_state() const { return module_.ranks(); }

  nlohmann::json RanksJson() const;
  nlohmann::json ReceivedJson(uint64_t since, size_t limit) const;

 private:
  struct Waiter {
    MonoTime deadline;
    std::function<void(SendOutcome)> done;
  };

  void OnStateChanged();
  void AfterStateChanged();
  void Submit(wire::CommandSendRequest request, MonoTime deadline,
              std::function<void(SendOutcome)> done);
  // On the leader: a send carried here by another node.
  void OnSendRequest(const wire::CommandSendRequest& request, PeerService::Reply reply);
  void Lead(const wire::CommandSendRequest& request, MonoTime deadline,
            std::function<void(SendOutcome)> done);
  void AnswerWaiters(bool expire);
  // The record as the leader knows it: acknowledged deliveries count before their commit.
  wire::CommandRecord WithAcknowledgements(const wire::CommandRecord& record) const;
  bool SettledHere(uint64_t id) const;
  void OnDelivery(const wire::CommandDelivery& delivery, PeerService::Reply reply);
  void LogRanks() const;
  void PublishCommandEvents();
  void ScheduleDemoCommand();

  EventLoop& loop_;
  const Clock& clock_;
  PeerService& peers_;
  ConsensusService& consensus_;
  RanksOptions options_;
  RankModule module_;
  Courier courier_;
  std::unique_ptr<CommandInbox> inbox_;
  std::unique_ptr<CommandRunner> runner_;
  std::multimap<uint64_t, Waiter> waiters_;  // by command id; leader only
  Timer changed_timer_;
  Timer waiter_timer_;
  Timer demo_timer_;
  bool change_pending_ = false;
  uint64_t logged_ranks_version_ = 0;
  uint64_t published_through_ = 0;  // command.sent published up to this command id
  std::set<uint64_t> unsettled_;    // published as sent, not yet as settled
  std::string request_prefix_;      // random per process, so request ids never repeat
  uint64_t next_request_ = 1;
  std::mt19937_64 random_;
  bool stopped_ = false;
};

}  // namespace synod

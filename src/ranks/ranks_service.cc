#include "ranks/ranks_service.h"

#include <spdlog/spdlog.h>

#include <array>

#include "core/decimal.h"
#include "core/node_identity.h"
#include "ranks/rank_state.h"

namespace synod {
namespace {

constexpr auto kRetryDelay = std::chrono::milliseconds(100);
constexpr std::array<const char*, 4> kDemoCommands = {"START_TRANSMIT", "STOP_TRANSMIT",
                                                      "PAUSE_TRANSMIT", "RESTART_TRANSMIT"};

std::chrono::milliseconds Remaining(MonoTime deadline, MonoTime now) {
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
}

}  // namespace

RanksService::RanksService(EventLoop& loop, const Clock& clock, PeerService& peers,
                           ConsensusService& consensus, RanksOptions options)
    : loop_(loop),
      clock_(clock),
      peers_(peers),
      consensus_(consensus),
      options_(std::move(options)),
      module_(consensus.members()),
      courier_(loop, clock, peers, consensus, module_, options_.courier),
      changed_timer_(loop),
      waiter_timer_(loop),
      demo_timer_(loop),
      random_(std::random_device{}()) {
  request_prefix_ = RandomHexId().substr(0, 12) + "-";
  consensus.RegisterModule(module_);
}

RanksService::~RanksService() = default;

Status RanksService::Start() {
  const std::string journal =
      options_.data_dir.empty() ? "" : options_.data_dir + "/received-commands.jsonl";
  Result<std::unique_ptr<CommandInbox>> inbox = CommandInbox::Open(journal);
  if (!inbox.ok()) return Status::Error("command inbox: " + inbox.error());
  inbox_ = std::move(inbox.value());
  if (inbox_->skipped_journal_lines() > 0) {
    spdlog::warn("ranks: skipped {} unreadable lines of {}", inbox_->skipped_journal_lines(),
                 journal);
  }
  if (!options_.on_command.empty()) {
    runner_ =
        std::make_unique<CommandRunner>(loop_, options_.on_command, options_.on_command_timeout);
  }
  consensus_.AddStateListener([this] { OnStateChanged(); });
  auto on_delivery = [this](const wire::PeerMessage& request, PeerService::Reply reply) {
    OnDelivery(request.command_delivery(), std::move(reply));
  };
  consensus_.HandleRequests(wire::PeerMessage::kCommandDelivery, on_delivery);
  consensus_.HandleRequests(wire::PeerMessage::kCommandSendRequest,
                            [this](const wire::PeerMessage& request, PeerService::Reply reply) {
                              OnSendRequest(request.command_send_request(), std::move(reply));
                            });
  courier_.Start(options_.self_id, on_delivery, [this] { OnStateChanged(); });
  waiter_timer_.Start(std::chrono::milliseconds(200), std::chrono::milliseconds(200),
                      [this] { AnswerWaiters(true); });
  if (options_.demo_commands) ScheduleDemoCommand();
  return Status::Ok();
}

void RanksService::Stop() {
  if (stopped_) return;
  stopped_ = true;
  courier_.Stop();
  changed_timer_.Stop();
  waiter_timer_.Stop();
  demo_timer_.Stop();
  if (runner_) runner_->Stop();
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& [id, waiter] : waiters) waiter.done(SendOutcome{503, "shutting down", {}});
}

// ---- external clients --------------------------------------------------------------------

void RanksService::AssignExternal(const std::string& ip_port,
                                  std::function<void(int, nlohmann::json)> done) {
  Result<std::string> key = NormalizeExternalAddress(ip_port);
  if (!key.ok()) {
    done(400, {{"error", key.error()}});
    return;
  }
  wire::RanksCommand command;
  command.mutable_assign_rank()->set_address(ip_port);
  consensus_.Propose(RankModule::Make(command), [ip_port, done](Result<Committed> result) {
    if (!result.ok()) {
      done(IsRequestError(result.code()) ? 400 : 503, {{"error", result.error()}});
    } else {
      const std::optional<uint64_t> rank = ParseDecimal(result.value().value);
      if (!rank) return done(503, {{"error", "the leader answered with a malformed rank"}});
      done(200, {{"rank", *rank}});
    }
  });
}

void RanksService::UnassignExternal(const std::string& ip_port,
                                    std::function<void(int, nlohmann::json)> done) {
  Result<std::string> key = NormalizeExternalAddress(ip_port);
  if (!key.ok()) {
    done(400, {{"success", false}, {"error", key.error()}});
    return;
  }
  wire::RanksCommand command;
  command.mutable_unassign_rank()->set_address(ip_port);
  command.mutable_unassign_rank()->set_reason("unassigned on request");
  consensus_.Propose(RankModule::Make(command), [done](Result<Committed> result) {
    if (!result.ok()) {
      done(IsRequestError(result.code()) ? 400 : 503,
           {{"success", false}, {"error", result.error()}});
    } else {
      done(200, {{"success", true}, {"was_ranked", result.value().value == "unassigned"}});
    }
  });
}

Result<std::string> RanksService::SenderFor(const std::string& ip_port) const {
  Result<std::string> wanted = NormalizeExternalAddress(ip_port);
  if (!wanted.ok()) return wanted;
  for (const auto& holder : module_.ranks().holders()) {
    if (holder.key() == wanted.value()) return holder.key();
    Result<std::string> address = NormalizeExternalAddress(holder.address());
    if (address.ok() && address.value() == wanted.value()) return holder.key();
  }
  return Status::Error("unknown sender " + ip_port +
                       ": it holds no rank (POST /assign-rank first)");
}

// ---- sending -----------------------------------------------------------------------------

void RanksService::Send(const std::string& sender, const std::string& text,
                        std::function<void(SendOutcome)> done) {
  wire::CommandSendRequest request;
  request.set_request_id(request_prefix_ + std::to_string(next_request_++));
  request.set_sender(sender);
  request.set_text(text);
  Submit(std::move(request), clock_.Monotonic() + options_.send_timeout, std::move(done));
}

void RanksService::Submit(wire::CommandSendRequest request, MonoTime deadline,
                          std::function<void(SendOutcome)> done) {
  if (stopped_) {
    done(SendOutcome{503, "shutting down", {}});
    return;
  }
  // The cluster's trouble is retried with the same request id, so the command is committed once.
  auto finish = [this, request, deadline, done](SendOutcome outcome) {
    if (outcome.status == 503 && !stopped_ && clock_.Monotonic() + kRetryDelay < deadline) {
      loop_.RunAfter(kRetryDelay,
                     [this, request, deadline, done] { Submit(request, deadline, done); });
      return;
    }
    done(std::move(outcome));
  };
  if (consensus_.IsLeader()) {
    Lead(request, deadline, finish);
    return;
  }
  const std::optional<Ipv4> leader = consensus_.LeaderAddress();
  if (!leader) {
    finish(SendOutcome{503, "no leader: the cluster has lost its quorum or is electing one", {}});
    return;
  }
  const auto wait = Remaining(deadline, clock_.Monotonic());
  wire::PeerMessage message;
  *message.mutable_command_send_request() = request;
  message.mutable_command_send_request()->set_wait_ms(static_cast<uint32_t>(wait.count()));
  peers_.Call(*leader, std::move(message), wait + std::chrono::seconds(1),
              [finish](Result<wire::PeerMessage> response) {
                if (!response.ok()) {
                  finish(SendOutcome{503, "leader unreachable: " + response.error(), {}});
                  return;
                }
                const wire::CommandSendResponse& sent = response.value().command_send_response();
                if (!sent.error().empty()) {
                  finish(SendOutcome{sent.bad_request() ? 400 : 503, sent.error(), {}});
                  return;
                }
                finish(SendOutcome{200, "", sent.record()});
              });
}

void RanksService::OnSendRequest(const wire::CommandSendRequest& request,
                                 PeerService::Reply reply) {
  auto answer = [reply](SendOutcome outcome) {
    wire::PeerMessage response;
    wire::CommandSendResponse* sent = response.mutable_command_send_response();
    *sent->mutable_record() = std::move(outcome.record);
    sent->set_error(outcome.error);
    sent->set_bad_request(outcome.status == 400);
    reply(response);
  };
  if (stopped_ || !consensus_.IsLeader()) {
    answer(SendOutcome{503, "not the leader", {}});
    return;
  }
  const auto wait = std::min(options_.send_timeout, std::chrono::milliseconds(request.wait_ms()));
  Lead(request, clock_.Monotonic() + wait, answer);
}

void RanksService::Lead(const wire::CommandSendRequest& request, MonoTime deadline,
                        std::function<void(SendOutcome)> done) {
  wire::RanksCommand command;
  wire::SendCommand* send = command.mutable_send_command();
  send->set_request_id(request.request_id());
  send->set_sender(request.sender());
  send->set_text(request.text());
  courier_.FlushProgressIfDue();
  consensus_.Propose(RankModule::Make(command), [this, deadline, done](Result<Committed> result) {
    if (!result.ok()) {
      done(SendOutcome{IsRequestError(result.code()) ? 400 : 503, result.error(), {}});
      return;
    }
    if (stopped_) {
      done(SendOutcome{503, "shutting down", {}});
      return;
    }
    const std::optional<uint64_t> parsed = ParseDecimal(result.value().value);
    if (!parsed) {
      done(SendOutcome{503, "the leader answered with a malformed command id", {}});
      return;
    }
    const uint64_t id = *parsed;
    const RankState& ranks = module_.ranks();
    if (const wire::CommandRecord* header = ranks.FindHeader(id)) {
      spdlog::info("ranks: command {} from rank {} goes to {} lower-ranked: {}", id,
                   header->sender_rank(), ranks.RecipientCount(id), header->text());
    }
    waiters_.emplace(id, Waiter{deadline, done});
    AnswerWaiters(false);
  });
}

wire::CommandRecord RanksService::WithAcknowledgements(const wire::CommandRecord& record) const {
  wire::CommandRecord known = record;
  for (wire::Delivery& delivery : *known.mutable_deliveries()) {
    if (delivery.state() == wire::DELIVERY_PENDING &&
        courier_.Acknowledged(delivery.recipient(), record.id())) {
      delivery.set_state(wire::DELIVERED);
    }
  }
  return known;
}

bool RanksService::SettledHere(uint64_t id) const {
  return module_.ranks().AllPendingRecipients(id, [this, id](const wire::Delivery& delivery) {
    return courier_.Acknowledged(delivery.recipient(), id);
  });
}

void RanksService::AnswerWaiters(bool expire) {
  if (waiters_.empty()) return;
  const MonoTime now = clock_.Monotonic();
  const bool leading = consensus_.IsLeader();
  std::vector<std::pair<std::function<void(SendOutcome)>, SendOutcome>> ready;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    const RankState& ranks = module_.ranks();
    SendOutcome outcome;
    bool answer = true;
    if (!leading) {
      outcome = {503, "leadership lost while the command was delivered", {}};
    } else if (ranks.FindHeader(it->first) == nullptr) {
      outcome = {503, "command " + std::to_string(it->first) + " is no longer known", {}};
    } else if (SettledHere(it->first) || (expire && now >= it->second.deadline)) {
      outcome = {200, "", WithAcknowledgements(*ranks.FindCommand(it->first))};
    } else {
      answer = false;
    }
    if (answer) {
      ready.emplace_back(std::move(it->second.done), std::move(outcome));
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [done, outcome] : ready) done(std::move(outcome));
}

// ---- state changes -----------------------------------------------------------------------

void RanksService::OnStateChanged() {
  if (stopped_ || change_pending_) return;
  change_pending_ = true;
  // After the apply, not inside it: nothing here may run while libraft is applying.
  changed_timer_.Start(std::chrono::milliseconds(0), std::chrono::milliseconds(0),
                       [this] { AfterStateChanged(); });
}

void RanksService::AfterStateChanged() {
  change_pending_ = false;
  if (stopped_) return;
  courier_.Reconcile();
  AnswerWaiters(false);
  PublishCommandEvents();
  const uint64_t version = module_.ranks().ranks_version();
  if (version != logged_ranks_version_) {
    logged_ranks_version_ = version;
    LogRanks();
  }
}

void RanksService::PublishCommandEvents() {
  if (!options_.events) return;
  // A node replaying a long log reports only the newest commands, and follows at most this
  // many at once until they settle.
  constexpr uint64_t kFollowed = 1000;
  const RankState& ranks = module_.ranks();
  const uint64_t last = ranks.last_command_id();
  const uint64_t first =
      std::max(published_through_ + 1, last > kFollowed ? last - kFollowed + 1 : 1);
  for (uint64_t id = first; id <= last; ++id) {
    const wire::CommandRecord* header = ranks.FindHeader(id);
    if (header == nullptr) continue;
    options_.events("command.sent", header->sent_at_nanos(),
                    {{"command_id", id},
                     {"command", header->text()},
                     {"sender", header->sender_address()},
                     {"recipients", ranks.RecipientCount(id)}});
    unsettled_.insert(id);
  }
  published_through_ = std::max(published_through_, last);
  for (auto it = unsettled_.begin(); it != unsettled_.end();) {
    const bool settled =
        ranks.AllPendingRecipients(*it, [](const wire::Delivery&) { return false; });
    if (!settled) {
      ++it;
      continue;
    }
    if (std::optional<wire::CommandRecord> record = ranks.FindCommand(*it)) {
      int delivered = 0, failed = 0;
      for (const auto& d : record->deliveries()) {
        delivered += d.state() == wire::DELIVERED;
        failed += d.state() == wire::DELIVERY_FAILED;
      }
      options_.events("command.settled", clock_.WallUtcNanos(),
                      {{"command_id", *it}, {"delivered", delivered}, {"failed", failed}});
    }
    it = unsettled_.erase(it);
  }
  while (unsettled_.size() > kFollowed) unsettled_.erase(unsettled_.begin());
}

void RanksService::LogRanks() const {
  const MembersState& members = consensus_.members();
  const auto& holders = module_.ranks().holders();
  std::string table = "ranks now (" + std::to_string(holders.size()) + "):";
  for (size_t rank = 0; rank < holders.size(); ++rank) {
    const wire::RankHolder& holder = holders[rank];
    std::string who = holder.key();
    if (const wire::MemberRecord* member = members.FindMember(holder.key())) {
      who = member->name() + " (" + member->id().substr(0, 8) + ")";
    }
    table += fmt::format("\n  {:>4}  {:<8}  {:<24}  {}", rank,
                         holder.kind() == wire::EXTERNAL_RANK ? "external" : "member",
                         holder.address(), who);
  }
  if (consensus_.IsLeader()) {
    spdlog::info("{}", table);
  } else {
    spdlog::debug("{}", table);
  }
}

// ---- receiving ---------------------------------------------------------------------------

void RanksService::OnDelivery(const wire::CommandDelivery& delivery, PeerService::Reply reply) {
  wire::PeerMessage response;
  wire::CommandDeliveryAck* ack = response.mutable_command_delivery_ack();
  if (!inbox_ || stopped_) {
    ack->set_error("not receiving commands");
    reply(response);
    return;
  }
  std::vector<ReceivedCommand> items;
  items.reserve(delivery.items_size());
  const int64_t now = clock_.WallUtcNanos();
  for (const auto& item : delivery.items()) {
    items.push_back(ReceivedCommand{item.command_id(), item.sender_rank(), item.sender(),
                                    item.text(), item.sent_at_nanos(), now, item.rank()});
  }
  Result<std::vector<ReceivedCommand>> fresh = inbox_->Accept(items);
  if (!fresh.ok()) {
    spdlog::error("ranks: cannot take delivered commands: {}", fresh.error());
    ack->set_error(fresh.error());
    reply(response);
    return;
  }
  ack->set_received_through(inbox_->received_through());
  reply(response);
  for (const ReceivedCommand& command : fresh.value()) {
    spdlog::info("ranks: received command {} from rank {} ({}): {}", command.id,
                 command.sender_rank, command.sender, command.text);
    if (runner_) runner_->Run(command);
  }
}

// ---- JSON --------------------------------------------------------------------------------

nlohmann::json RanksService::RanksJson() const {
  const MembersState& members = consensus_.members();
  nlohmann::json ranks = nlohmann::json::array();
  const auto& holders = module_.ranks().holders();
  for (size_t rank = 0; rank < holders.size(); ++rank) {
    const wire::RankHolder& holder = holders[rank];
    const bool external = holder.kind() == wire::EXTERNAL_RANK;
    nlohmann::json entry = {
        {"rank", rank},
        {"kind", external ? "external" : "member"},
        {"id", external ? nlohmann::json(nullptr) : nlohmann::json(holder.key())},
        {"address", holder.address()},
        {"ranked_at", NanosToSeconds(holder.ranked_at_nanos())},
    };
    if (const wire::MemberRecord* member = members.FindMember(holder.key())) {
      entry["name"] = member->name();
    }
    ranks.push_back(std::move(entry));
  }
  return {{"ranks", ranks}, {"last_command_id", module_.ranks().last_command_id()}};
}

nlohmann::json RanksService::ReceivedJson(uint64_t since, size_t limit) const {
  nlohmann::json commands = nlohmann::json::array();
  if (inbox_) {
    for (const auto& command : inbox_->Since(since, limit)) {
      commands.push_back(ReceivedCommandJson(command));
    }
  }
  const auto rank = module_.ranks().RankOf(options_.self_id);
  return {
      {"id", options_.self_id},
      {"rank", rank ? nlohmann::json(*rank) : nlohmann::json(nullptr)},
      {"received_through", inbox_ ? inbox_->received_through() : 0},
      {"commands", commands},
  };
}

// ---- demo --------------------------------------------------------------------------------

void RanksService::ScheduleDemoCommand() {
  std::uniform_int_distribution<int> seconds(10, 60);
  demo_timer_.Start(std::chrono::seconds(seconds(random_)), std::chrono::milliseconds(0), [this] {
    const std::string text = kDemoCommands[random_() % kDemoCommands.size()];
    Send(options_.self_id, text, [text](const SendOutcome& outcome) {
      if (outcome.status != 200) {
        spdlog::warn("ranks: demo command {} not sent: {}", text, outcome.error);
        return;
      }
      int delivered = 0;
      for (const auto& d : outcome.record.deliveries()) delivered += d.state() == wire::DELIVERED;
      spdlog::info("ranks: demo command {} (id {}) reached {} of {} lower-ranked", text,
                   outcome.record.id(), delivered, outcome.record.deliveries_size());
    });
    ScheduleDemoCommand();
  });
}

}  // namespace synod

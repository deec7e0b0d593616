#include "consensus/spare_feed.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace synod {
namespace {

// An empty message tells a spare who leads when there is nothing new; a spare that has not
// heard from the feed for kFeedFresh goes back to what Raft says.
constexpr auto kFeedKeepalive = std::chrono::milliseconds(250);
constexpr auto kFeedFresh = std::chrono::milliseconds(1000);
constexpr auto kFeedReplySpacing = std::chrono::milliseconds(100);
constexpr size_t kFeedWindowBytes = 8 << 20;
constexpr auto kStateChunkTimeout = std::chrono::milliseconds(5000);
constexpr int kStateChunkRetries = 3;

}  // namespace

SpareFeed::SpareFeed(const Clock& clock, PeerSender& peers, FeedEngine& engine,
                     ReplicatedState& state, const MembersState& members, Options options)
    : clock_(clock),
      peers_(peers),
      engine_(engine),
      state_(state),
      members_(members),
      options_(std::move(options)),
      recent_entries_(options_.window, kFeedWindowBytes),
      transfers_(RaftIdFromNodeId(options_.self_id) << 20) {}

void SpareFeed::OnApplied(uint64_t index, std::string_view payload) {
  recent_entries_.Record(index, payload);
  if (engine_.IsLeader()) FeedSpares(index);
}

void SpareFeed::OnRestored(uint64_t index) { recent_entries_.Restored(index); }

void SpareFeed::Tick(bool leader) {
  if (leader) {
    TrackSpares();
    FeedSpares(engine_.applied_index());  // keepalives, and whoever fell behind
  } else {
    spares_.clear();
    transfers_.Clear();
  }
  transfers_.Expire(clock_.Monotonic());
}

wire::StateChunk SpareFeed::OnStateChunkRequest(const wire::StateChunkRequest& request) {
  if (!engine_.IsLeader()) {
    wire::StateChunk refused;
    refused.set_error("not the leader");
    return refused;
  }
  return transfers_.Serve(request, clock_.Monotonic(), [this] {
    return StateTransferServer::Capture{state_.Capture(), engine_.applied_index()};
  });
}

void SpareFeed::TrackSpares() {
  std::erase_if(spares_, [this](const auto& entry) {
    const auto* member = members_.FindMember(entry.first);
    return member == nullptr || member->state() == wire::LEFT ||
           engine_.RoleOf(member->raft_id()) != RaftRole::kSpare;
  });
  const uint64_t through = engine_.applied_index();
  for (const auto* member : members_.MembersInJoinOrder()) {
    if (member->state() == wire::LEFT || member->id() == options_.self_id ||
        engine_.RoleOf(member->raft_id()) != RaftRole::kSpare) {
      continue;
    }
    Result<Ipv4> ip = Ipv4::Parse(member->ip());
    if (!ip.ok()) continue;
    // Assumed up to date: a spare that is not says so at the first message, and is caught up.
    spares_.try_emplace(member->id(), Cursor{.ip = ip.value(), .sent_through = through});
  }
}

void SpareFeed::FeedSpares(uint64_t through) {
  const MonoTime now = clock_.Monotonic();
  for (auto& [id, cursor] : spares_) FeedSpare(id, cursor, through, now);
}

void SpareFeed::FeedSpare(const std::string& id, Cursor& cursor, uint64_t through, MonoTime now) {
  if (cursor.sent_through >= through && now - cursor.last_sent < kFeedKeepalive) return;
  wire::PeerMessage message;
  wire::EntryFeed* feed = message.mutable_entry_feed();
  feed->set_leader_id(options_.self_id);
  feed->set_leader_ip(options_.self_ip.ToString());
  feed->set_term(engine_.term());
  const uint64_t after = std::min(cursor.sent_through, through);
  feed->set_prev_index(after);
  feed->set_through_index(through);
  if (!recent_entries_.Collect(after, through, *feed)) {
    // It missed more than is kept: it fetches the whole state, in chunks, and says where it is.
    if (cursor.sent_through != through || now - cursor.last_sent >= kFeedKeepalive) {
      spdlog::info("consensus: spare {} is behind (at {}); it is to fetch the state as of {}", id,
                   after, through);
    }
    feed->clear_entries();
    feed->set_state_needed(true);
  }
  peers_.Send(cursor.ip, message);
  cursor.sent_through = through;
  cursor.last_sent = now;
}

void SpareFeed::OnFeedReply(const wire::EntryFeedReply& reply) {
  if (!engine_.IsLeader()) return;
  auto it = spares_.find(reply.node_id());
  if (it == spares_.end()) return;
  it->second.sent_through = reply.applied_index();
  FeedSpare(it->first, it->second, engine_.applied_index(), clock_.Monotonic());
}

void SpareFeed::OnFeed(const wire::EntryFeed& feed) {
  if (!engine_.started() || engine_.IsLeader()) return;
  const MonoTime now = clock_.Monotonic();
  // A deposed leader. Only while the newer one feeds: a feed that claimed a term no leader
  // reaches must not lock the real leader out for good.
  if (source_ && feed.term() < source_->term && now - last_fed_ < kFeedFresh) return;
  // Voters and standbys follow the Raft log, never the feed (a confused or forged feed would
  // apply entries the log then skips), as long as this node's Raft view is live: it knows a
  // leader, whatever term the feed claims. A node removed from the configuration while it was
  // away still lists itself with its old role, but hears no leader within an election timeout:
  // then the feed is how it catches up.
  if (const std::optional<RaftRole> role = engine_.RoleOf(RaftIdFromNodeId(options_.self_id));
      role && *role != RaftRole::kSpare && engine_.Leader()) {
    if (!refused_feed_logged_) {
      refused_feed_logged_ = true;
      spdlog::info(
          "consensus: refusing an entry feed from {} (term {}): this node is a {} and "
          "follows the Raft log",
          feed.leader_ip(), feed.term(), RaftRoleName(*role));
    }
    return;
  }
  Result<Ipv4> leader_ip = Ipv4::Parse(feed.leader_ip());
  if (!leader_ip.ok() || feed.leader_id().empty() || feed.prev_index() > feed.through_index()) {
    spdlog::warn("consensus: ignoring a malformed entry feed from {}", feed.leader_id());
    return;
  }
  if (!source_ || source_->leader_id != feed.leader_id()) {
    spdlog::info("consensus: leader {} feeds this spare (term {})", feed.leader_ip(), feed.term());
  }
  source_ = Source{feed.leader_id(), leader_ip.value(), feed.term()};
  last_fed_ = now;

  const uint64_t applied = engine_.applied_index();
  if (feed.state_needed()) {
    if (!fetch_ && feed.through_index() > applied) {
      spdlog::info("consensus: fetching the leader's state (this spare is at {}, the leader at {})",
                   applied, feed.through_index());
      fetch_ = Fetch{.session = state_.BeginRestore(), .leader = leader_ip.value(), .started = now};
      FetchState();
    }
    return;
  }
  if (fetch_) return;  // entries follow once the state is in
  if (feed.prev_index() > applied) {
    // A gap (a message lost with a connection, or a new leader that assumed too much).
    if (last_reply_index_ == applied && now - last_reply_ < kFeedReplySpacing) {
      return;  // already asked; the answer is on its way
    }
    last_reply_index_ = applied;
    last_reply_ = now;
    wire::PeerMessage reply;
    reply.mutable_entry_feed_reply()->set_node_id(options_.self_id);
    reply.mutable_entry_feed_reply()->set_applied_index(applied);
    peers_.Send(leader_ip.value(), reply);
    return;
  }
  for (const auto& entry : feed.entries()) {
    if (entry.index() > feed.through_index()) break;
    engine_.ApplyFed(entry.index(), entry.payload());  // ignores what it holds already
  }
  engine_.FedThrough(feed.through_index());
}

void SpareFeed::FetchState() {
  wire::PeerMessage request;
  request.mutable_state_chunk_request()->set_node_id(options_.self_id);
  request.mutable_state_chunk_request()->set_transfer_id(fetch_->transfer_id);
  request.mutable_state_chunk_request()->set_offset(fetch_->received);
  peers_.Call(
      fetch_->leader, request, kStateChunkTimeout,
      [this](Result<wire::PeerMessage> response) {
        if (!fetch_ || stopped_) return;
        auto give_up = [this](const std::string& why) {
          // The next feed that says the state is needed starts a new fetch.
          spdlog::warn("consensus: fetching the leader's state failed after {} bytes: {}",
                       fetch_->received, why);
          fetch_.reset();
        };
        if (!response.ok()) {
          // The answer may be lost: ask for the same chunk again (the leader keeps the last one).
          if (++fetch_->failures > kStateChunkRetries) return give_up(response.error());
          FetchState();
          return;
        }
        const wire::StateChunk& chunk = response.value().state_chunk();
        if (!chunk.error().empty()) return give_up(chunk.error());
        if (chunk.offset() != fetch_->received ||
            (fetch_->transfer_id != 0 &&
             (chunk.transfer_id() != fetch_->transfer_id || chunk.index() != fetch_->index))) {
          return give_up("the leader sent a chunk of another transfer or offset");
        }
        fetch_->transfer_id = chunk.transfer_id();
        fetch_->index = chunk.index();
        fetch_->failures = 0;
        if (Status fed = fetch_->session->Feed(chunk.data()); !fed.ok())
          return give_up(fed.message());
        fetch_->received += chunk.data().size();
        if (!chunk.last()) {
          FetchState();
          return;
        }
        Status restored =
            engine_.RestoreFed(chunk.index(), [this] { return fetch_->session->Commit(); });
        if (!restored.ok()) return give_up(restored.message());
        spdlog::info("consensus: took the leader's state as of {} ({} bytes, {} ms)", chunk.index(),
                     fetch_->received,
                     std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Monotonic() -
                                                                           fetch_->started)
                         .count());
        fetch_.reset();
      },
      PeerLane::kBulk);
}

std::optional<SpareFeed::Source> SpareFeed::RecentSource() const {
  if (!source_ || clock_.Monotonic() - last_fed_ >= kFeedFresh) return std::nullopt;
  return source_;
}

}  // namespace synod

// SpareFeed: committed entries from the leader to the spares, outside Raft replication.
//
// Only the voters and a few standbys take part in Raft; every other member is a spare, which
// the leader feeds each committed entry itself, right after applying it (EntryFeed over the
// peer protocol). A commit then costs the voters' disk writes only, and a spare wakes once per
// entry instead of three times (append, write, commit).
// - Leader side: one cursor per spare (what it was last sent, assumed received until it says
//   otherwise); keepalives every 250 ms tell a spare who leads when nothing is new; entries a
//   spare missed are sent again from the last kFeedWindow entries kept (RecentEntries).
// - A spare further behind than that is told so, and pulls the leader's whole state in chunks
//   (StateTransferServer on the leader, a RestoreSession here), then follows the feed again.
// - Spare side: the feed is its source of truth for who leads while fresh (1 s); entries are
//   applied through the engine, so that each index is applied once whichever way it comes.
// Loop thread only.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "consensus/members_state.h"
#include "consensus/raft_engine.h"
#include "consensus/recent_entries.h"
#include "consensus/replicated_state.h"
#include "consensus/state_transfer.h"
#include "core/clock.h"
#include "net/ipv4.h"
#include "peer/peer_sender.h"

namespace synod {

class SpareFeed {
 public:
  struct Options {
    std::string self_id;
    Ipv4 self_ip;
    size_t window = 4096;  // entries kept to send again
  };
  // The leader feeding this spare.
  struct Source {
    std::string leader_id;
    Ipv4 leader_ip;
    uint64_t term = 0;
  };

  // Everything passed in must outlive the feed.
  SpareFeed(const Clock& clock, PeerSender& peers, FeedEngine& engine, ReplicatedState& state,
            const MembersState& members, Options options);

  // Every entry applied here, with its index; the leader feeds it to the spares at once.
  void OnApplied(uint64_t index, std::string_view payload);
  void OnRestored(uint64_t index);
  // Once per tick: the leader follows who the spares are and sends keepalives and what they
  // miss; another node forgets the leader's duties.
  void Tick(bool leader);
  // Stops fetching state (the node is leaving).
  void Stop() { stopped_ = true; }

  void OnFeed(const wire::EntryFeed& feed);
  void OnFeedReply(const wire::EntryFeedReply& reply);
  wire::StateChunk OnStateChunkRequest(const wire::StateChunkRequest& request);

  // The leader that fed this node within the last second, if one did.
  std::optional<Source> RecentSource() const;

 private:
  // The leader's position in feeding one spare.
  struct Cursor {
    Ipv4 ip;
    uint64_t sent_through = 0;  // what it was last sent (assumed received until it says not)
    MonoTime last_sent{};
  };
  // A fetch of the leader's state, while one runs.
  struct Fetch {
    std::unique_ptr<RestoreSession> session;
    Ipv4 leader;
    MonoTime started{};
    uint64_t transfer_id = 0;  // 0 until the leader's first answer
    uint64_t index = 0;        // the state is as of this log index
    uint64_t received = 0;     // bytes of the stream
    int failures = 0;          // requests in a row without an answer
  };

  void TrackSpares();
  void FeedSpares(uint64_t through);
  void FeedSpare(const std::string& id, Cursor& cursor, uint64_t through, MonoTime now);
  // Asks for the next chunk of the running fetch.
  void FetchState();

  const Clock& clock_;
  PeerSender& peers_;
  FeedEngine& engine_;
  ReplicatedState& state_;
  const MembersState& members_;
  Options options_;
  RecentEntries recent_entries_;
  std::map<std::string, Cursor> spares_;  // leader only, by node id
  StateTransferServer transfers_;         // leader only
  std::optional<Source> source_;
  MonoTime last_fed_{};
  bool refused_feed_logged_ = false;
  uint64_t last_reply_index_ = 0;
  MonoTime last_reply_{};
  std::optional<Fetch> fetch_;
  bool stopped_ = false;
};

}  // namespace synod

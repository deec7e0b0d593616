// StateTransferServer: the leader's side of streaming its whole state to a spare that is
// further behind than the leader keeps log entries.
//
// A transfer captures the state once (a cheap copy-on-write view, see StateModule::Capture)
// and streams it in chunks of about kChunkBytes, one per request: the spare asks for the next
// chunk only once it has taken the previous one (flow control), and may ask for the last chunk
// again if an answer was lost (resume). The leader holds no serialized copy of the state, only
// the view and the chunk in flight. Transfers idle for kIdleTimeout are dropped; a spare whose
// transfer is gone starts a new one. Time comes in as arguments: no I/O, no clock reads.
// Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "consensus/snapshot_stream.h"
#include "core/clock.h"
#include "proto/peer.pb.h"

namespace synod {

class StateTransferServer {
 public:
  static constexpr size_t kChunkBytes = 1u << 20;
  static constexpr size_t kMaxTransfers = 4;
  static constexpr std::chrono::seconds kIdleTimeout{30};

  // What a new transfer streams: the state's view, and the log index it is as of.
  struct Capture {
    std::unique_ptr<SnapshotProducer> producer;
    uint64_t index = 0;
  };

  // `id_base` keeps transfer ids of different leaders apart.
  explicit StateTransferServer(uint64_t id_base) : next_id_(id_base | 1) {}

  // Answers one request; `capture` is called when the request starts a new transfer.
  wire::StateChunk Serve(const wire::StateChunkRequest& request, MonoTime now,
                         const std::function<Capture()>& capture);
  void Expire(MonoTime now);
  void Clear() { transfers_.clear(); }
  size_t active() const { return transfers_.size(); }

 private:
  struct Transfer {
    std::string node_id;
    std::unique_ptr<SnapshotProducer> producer;
    uint64_t index = 0;
    uint64_t offset = 0;  // bytes produced so far
    uint64_t previous_offset = 0;
    std::string previous_chunk;  // the last chunk sent, for a repeated request
    bool finished = false;
    MonoTime last_used{};
  };

  std::map<uint64_t, Transfer> transfers_;
  uint64_t next_id_;
};

}  // namespace synod

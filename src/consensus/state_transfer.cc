#include "consensus/state_transfer.h"

namespace synod {
namespace {

wire::StateChunk Refuse(uint64_t transfer_id, std::string why) {
  wire::StateChunk chunk;
  chunk.set_transfer_id(transfer_id);
  chunk.set_error(std::move(why));
  return chunk;
}

}  // namespace

wire::StateChunk StateTransferServer::Serve(const wire::StateChunkRequest& request, MonoTime now,
                                            const std::function<Capture()>& capture) {
  uint64_t id = request.transfer_id();
  if (id == 0) {
    // A new transfer replaces any the same node had.
    std::erase_if(transfers_,
                  [&](const auto& entry) { return entry.second.node_id == request.node_id(); });
    if (transfers_.size() >= kMaxTransfers) {
      return Refuse(0, "the leader is already sending its state to " +
                           std::to_string(transfers_.size()) + " nodes; try again shortly");
    }
    Capture captured = capture();
    id = next_id_;
    next_id_ += 2;
    Transfer& transfer = transfers_[id];
    transfer.node_id = request.node_id();
    transfer.producer = std::move(captured.producer);
    transfer.index = captured.index;
  }
  auto it = transfers_.find(id);
  if (it == transfers_.end() || it->second.node_id != request.node_id()) {
    return Refuse(id, "no such transfer here (a new leader, or it was idle too long)");
  }
  Transfer& transfer = it->second;
  transfer.last_used = now;
  wire::StateChunk chunk;
  chunk.set_transfer_id(id);
  chunk.set_index(transfer.index);
  if (request.offset() == transfer.offset && !transfer.finished) {
    std::string data;
    data.reserve(kChunkBytes + (64 << 10));
    transfer.finished = transfer.producer->Produce(data, kChunkBytes);
    if (transfer.finished) transfer.producer.reset();
    transfer.previous_offset = transfer.offset;
    transfer.offset += data.size();
    transfer.previous_chunk = std::move(data);
  } else if (request.offset() != transfer.previous_offset) {
    return Refuse(id,
                  "offset " + std::to_string(request.offset()) + " is not where the transfer is");
  }
  chunk.set_offset(transfer.previous_offset);
  chunk.set_data(transfer.previous_chunk);
  chunk.set_last(transfer.finished);
  return chunk;
}

void StateTransferServer::Expire(MonoTime now) {
  std::erase_if(transfers_,
                [now](const auto& entry) { return now - entry.second.last_used > kIdleTimeout; });
}

}  // namespace synod

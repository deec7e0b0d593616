#include "consensus/state_transfer.h"

#include <gtest/gtest.h>

#include "consensus/replicated_state.h"
#include "kv/kv_state.h"

namespace synod {
namespace {

struct Node {
  Node() { state.Register(kv); }
  KvState kv;
  ReplicatedState state;
};

wire::StateChunkRequest Ask(const std::string& node, uint64_t transfer, uint64_t offset) {
  wire::StateChunkRequest request;
  request.set_node_id(node);
  request.set_transfer_id(transfer);
  request.set_offset(offset);
  return request;
}

class StateTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // About 3 MiB of state: several chunks.
    for (int i = 0; i < 3000; ++i) {
      const Proposal put = KvState::Put("key" + std::to_string(i), std::string(1000, 'a' + i % 26));
      wire::Op op;
      op.set_module(put.module);
      op.set_version(1);
      op.set_body(put.body);
      leader_.state.Apply(i + 1, EncodeEntry(1, {op}));
    }
  }
  StateTransferServer::Capture Capture() {
    ++captures_;
    return {leader_.state.Capture(), 3000};
  }
  std::function<StateTransferServer::Capture()> capture_ = [this] { return Capture(); };
  Node leader_;
  int captures_ = 0;
  MonoTime now_{};
};

TEST_F(StateTransferTest, StreamsTheStateInChunksThatRestoreExactly) {
  StateTransferServer server(1 << 20);
  Node spare;
  auto session = spare.state.BeginRestore();
  wire::StateChunk chunk = server.Serve(Ask("s1", 0, 0), now_, capture_);
  int chunks = 1;
  // The leader goes on meanwhile: the transfer keeps the state as captured.
  const Proposal put = KvState::Put("key0", "changed");
  wire::Op op;
  op.set_module(put.module);
  op.set_version(1);
  op.set_body(put.body);
  leader_.state.Apply(3001, EncodeEntry(1, {op}));
  while (true) {
    ASSERT_TRUE(chunk.error().empty()) << chunk.error();
    EXPECT_LE(chunk.data().size(), StateTransferServer::kChunkBytes + 64 * 1024);
    EXPECT_EQ(chunk.index(), 3000u);
    ASSERT_TRUE(session->Feed(chunk.data()).ok());
    if (chunk.last()) break;
    chunk = server.Serve(Ask("s1", chunk.transfer_id(), chunk.offset() + chunk.data().size()), now_,
                         capture_);
    ++chunks;
  }
  EXPECT_GE(chunks, 3);
  EXPECT_EQ(captures_, 1) << "one capture per transfer";
  ASSERT_TRUE(session->Commit().ok());
  EXPECT_EQ(spare.kv.size(), 3000u);
  EXPECT_EQ(spare.kv.Get("key0").value_or(""), std::string(1000, 'a'));
  EXPECT_EQ(spare.kv.Get("key2999").value_or(""), std::string(1000, 'a' + 2999 % 26));
}

TEST_F(StateTransferTest, ALostAnswerIsAskedForAgainAndWrongOffsetsAreRefused) {
  StateTransferServer server(1 << 20);
  const wire::StateChunk first = server.Serve(Ask("s1", 0, 0), now_, capture_);
  const wire::StateChunk again = server.Serve(Ask("s1", first.transfer_id(), 0), now_, capture_);
  EXPECT_EQ(again.data(), first.data()) << "the same chunk again";
  const uint64_t next = first.data().size();
  const wire::StateChunk second =
      server.Serve(Ask("s1", first.transfer_id(), next), now_, capture_);
  EXPECT_EQ(second.offset(), next);
  EXPECT_TRUE(server.Serve(Ask("s1", first.transfer_id(), 0), now_, capture_).error().size() > 0)
      << "only the last chunk can be asked for again";
  EXPECT_FALSE(server.Serve(Ask("s2", first.transfer_id(), next), now_, capture_).error().empty())
      << "another node's transfer";
  EXPECT_FALSE(server.Serve(Ask("s1", 12345, 0), now_, capture_).error().empty());
}

TEST_F(StateTransferTest, TransfersAreBoundedReplacedAndExpire) {
  StateTransferServer server(1 << 20);
  for (size_t i = 0; i < StateTransferServer::kMaxTransfers; ++i) {
    EXPECT_TRUE(server.Serve(Ask("s" + std::to_string(i), 0, 0), now_, capture_).error().empty());
  }
  EXPECT_FALSE(server.Serve(Ask("late", 0, 0), now_, capture_).error().empty()) << "bounded";
  EXPECT_TRUE(server.Serve(Ask("s0", 0, 0), now_, capture_).error().empty())
      << "a node that starts over replaces its own transfer";
  EXPECT_EQ(server.active(), StateTransferServer::kMaxTransfers);
  server.Expire(now_ + StateTransferServer::kIdleTimeout + std::chrono::seconds(1));
  EXPECT_EQ(server.active(), 0u);
}

}  // namespace
}  // namespace synod

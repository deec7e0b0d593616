// Writes the starting corpus of peer_handlers_fuzz: one file per request kind a node handles
// (and a few sequences), in that target's input format, with fields a real peer would send and
// the fuzz node's own id where a message names it. The fuzzer mutates from there.
//   peer_seeds DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz/fuzz_node.h"
#include "kv/kv_state.h"
#include "proto/peer.pb.h"

namespace {

using synod::wire::PeerMessage;

std::string Input(const std::vector<PeerMessage>& messages) {
  std::string out;
  for (const PeerMessage& message : messages) {
    const std::string bytes = message.SerializeAsString();
    out += static_cast<char>(bytes.size() & 0xff);
    out += static_cast<char>(bytes.size() >> 8 & 0xff);
    out += bytes;
  }
  return out;
}

PeerMessage Request(uint64_t id) {
  PeerMessage message;
  message.set_request_id(id);
  return message;
}

synod::wire::Op KvPutOp(const std::string& key, const std::string& value) {
  const synod::Proposal proposal = synod::KvState::Put(key, value);
  synod::wire::Op op;
  op.set_module(proposal.module);
  op.set_version(proposal.version);
  op.set_body(proposal.body);
  op.set_request_id("seed-" + key);
  return op;
}

synod::wire::MemberRecord Stranger() {
  synod::wire::MemberRecord member;
  member.set_id("0123456789abcdef0123456789abcdef");
  member.set_name("stranger");
  member.set_ip("127.0.0.2");
  member.set_api_port(7400);
  member.set_peer_port(7402);
  member.set_raft_port(7401);
  member.set_raft_id(42);
  (*member.mutable_modules())["kv"] = 1;
  return member;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: peer_seeds DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  std::vector<std::pair<std::string, std::vector<PeerMessage>>> seeds;

  PeerMessage hello = Request(1);
  hello.mutable_hello()->set_protocol_version(1);
  hello.mutable_hello()->set_node_id(Stranger().id());
  seeds.push_back({"hello", {hello}});

  PeerMessage propose = Request(2);
  *propose.mutable_propose_request()->mutable_op() = KvPutOp("seed", "value");
  seeds.push_back({"propose", {propose}});

  PeerMessage read_index = Request(3);
  read_index.mutable_read_index_request();
  seeds.push_back({"read_index", {read_index}});

  PeerMessage join = Request(4);
  *join.mutable_join_request()->mutable_member() = Stranger();
  PeerMessage leave = Request(5);
  leave.mutable_leave_request()->set_node_id(Stranger().id());
  seeds.push_back({"join", {join}});
  seeds.push_back({"join_then_leave", {join, propose, leave}});
  PeerMessage leave_self = Request(6);
  leave_self.mutable_leave_request()->set_node_id(synod::fuzz::kFuzzNodeId);
  seeds.push_back({"leave_self", {leave_self}});

  PeerMessage heartbeat = Request(0);
  heartbeat.mutable_heartbeat()->set_node_id(synod::fuzz::kFuzzNodeId);
  synod::wire::ClockReport* report = heartbeat.mutable_heartbeat()->mutable_clock();
  report->set_node_id(synod::fuzz::kFuzzNodeId);
  report->set_offset_nanos(1000);
  report->set_error_nanos(50);
  report->set_master_id(synod::fuzz::kFuzzNodeId);
  report->set_synced(true);
  report->set_drift_ppm(3.5);
  seeds.push_back({"heartbeat", {heartbeat}});

  PeerMessage reports = Request(7);
  reports.mutable_clock_reports_request();
  seeds.push_back({"clock_reports", {reports}});

  PeerMessage send = Request(8);
  send.mutable_command_send_request()->set_request_id("seed-command");
  send.mutable_command_send_request()->set_sender(synod::fuzz::kFuzzNodeId);
  send.mutable_command_send_request()->set_text("hello");
  send.mutable_command_send_request()->set_wait_ms(100);
  seeds.push_back({"command_send", {send}});

  PeerMessage delivery = Request(9);
  synod::wire::CommandDelivery::Item* item = delivery.mutable_command_delivery()->add_items();
  item->set_command_id(1);
  item->set_sender_rank(0);
  item->set_sender("127.0.0.2:7400");
  item->set_text("echo hi");
  item->set_rank(1);
  seeds.push_back({"command_delivery", {delivery}});

  PeerMessage ack = Request(0);
  ack.mutable_command_delivery_ack()->set_received_through(~uint64_t{0});
  seeds.push_back({"command_ack", {ack}});

  PeerMessage feed = Request(0);
  synod::wire::EntryFeed* entries = feed.mutable_entry_feed();
  entries->set_leader_id(Stranger().id());
  entries->set_leader_ip("127.0.0.2");
  entries->set_term(2);
  entries->set_prev_index(1);
  entries->set_through_index(3);
  synod::wire::Entry entry;
  entry.set_format(1);
  entry.set_at_nanos(1'700'000'000'000'000'000);
  *entry.add_ops() = KvPutOp("fed", "by a stranger");
  for (uint64_t index = 2; index <= 3; ++index) {
    synod::wire::EntryFeed::Entry* fed = entries->add_entries();
    fed->set_index(index);
    fed->set_payload(entry.SerializeAsString());
  }
  seeds.push_back({"entry_feed", {feed}});

  PeerMessage feed_reply = Request(0);
  feed_reply.mutable_entry_feed_reply()->set_node_id(Stranger().id());
  feed_reply.mutable_entry_feed_reply()->set_applied_index(1);
  seeds.push_back({"entry_feed_reply", {feed_reply}});

  PeerMessage chunk = Request(10);
  chunk.mutable_state_chunk_request()->set_node_id(Stranger().id());
  PeerMessage next_chunk = Request(11);
  next_chunk.mutable_state_chunk_request()->set_node_id(Stranger().id());
  next_chunk.mutable_state_chunk_request()->set_transfer_id(1);
  next_chunk.mutable_state_chunk_request()->set_offset(16);
  seeds.push_back({"state_chunks", {chunk, next_chunk}});

  PeerMessage block = Request(12);
  block.mutable_block_request()->set_hash(std::string(32, '\x5a'));
  block.mutable_block_request()->set_path("hello.txt");
  block.mutable_block_request()->set_index(0);
  seeds.push_back({"block", {block}});

  PeerMessage time = Request(0);
  time.mutable_time_request()->set_sequence(1);
  time.mutable_time_request()->set_t1_nanos(1'700'000'000'000'000'000);
  PeerMessage stray = Request(99);
  stray.mutable_join_response()->set_ok(true);
  seeds.push_back({"time_and_stray_response", {time, stray}});

  for (const auto& [name, messages] : seeds) {
    std::ofstream(dir / ("seed-" + name), std::ios::binary) << Input(messages);
  }
  std::printf("%zu seeds in %s\n", seeds.size(), dir.c_str());
  return 0;
}

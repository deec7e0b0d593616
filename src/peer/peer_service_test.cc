#include "peer/peer_service.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "net/frame_codec.h"

namespace synod {
namespace {

using std::chrono::milliseconds;

// Two nodes on distinct 127.x addresses sharing one free peer port, on one loop.
class PeerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    const uint32_t base = 0x7F000000u | ((random() % 200 + 20) << 16) | ((random() % 250) << 8);
    a_ip_ = Ipv4{base | 2};
    b_ip_ = Ipv4{base | 3};
    port_ = FreePort();
  }

  uint16_t FreePort() {
    for (int attempt = 0; attempt < 50; ++attempt) {
      TcpListener probe_a(loop_), probe_b(loop_);
      if (!probe_a.Listen(a_ip_, 0, "test", [](auto) {}).ok()) continue;
      if (probe_b.Listen(b_ip_, probe_a.port(), "test", [](auto) {}).ok()) return probe_a.port();
    }
    ADD_FAILURE() << "no free port";
    return 0;
  }

  std::unique_ptr<PeerService> Node(Ipv4 ip, const std::string& id, const std::string& name,
                                    std::shared_ptr<const TlsConfig> tls = nullptr,
                                    TlsRefusals* refusals = nullptr) {
    auto node = std::make_unique<PeerService>(loop_, clock_,
                                              PeerOptions{NodeIdentity{id}, name, ip, port_, 7400,
                                                          7401, milliseconds(100), tls, refusals});
    EXPECT_TRUE(node->Start().ok());
    return node;
  }

  // Runs the loop until `done` holds or the deadline passes.
  bool RunUntil(const std::function<bool()>& done, milliseconds deadline = milliseconds(5000)) {
    Timer poll(loop_);
    const MonoTime give_up = clock_.Monotonic() + deadline;
    bool met = false;
    poll.Start(milliseconds(10), milliseconds(10), [&] {
      met = done();
      if (met || clock_.Monotonic() > give_up) loop_.Stop();
    });
    loop_.Run();
    return met;
  }

  SystemClock clock_;
  EventLoop loop_;
  Ipv4 a_ip_, b_ip_;
  uint16_t port_ = 0;
};

TEST_F(PeerServiceTest, HelloThenRoundTripAndOffsetBetweenTwoNodes) {
  auto a = Node(a_ip_, "aaaaaaaa000000000000000000000001", "alpha");
  auto b = Node(b_ip_, "bbbbbbbb000000000000000000000002", "beta");
  a->Track("bbbbbbbb", b_ip_);
  ASSERT_TRUE(RunUntil([&] {
    auto view = a->Lookup("bbbbbbbb");
    return view && view->samples >= 4;
  }));
  const PeerView view = *a->Lookup("bbbbbbbb");
  EXPECT_TRUE(view.is_synod);
  EXPECT_EQ(view.name, "beta");
  EXPECT_EQ(view.node_id, "bbbbbbbb000000000000000000000002");
  ASSERT_TRUE(view.rtt_ms && view.offset_ms);
  EXPECT_GE(*view.rtt_ms, 0.0);
  EXPECT_LT(*view.rtt_ms, 100.0);
  // Same machine, same clock: the offset is bounded by half the round trip of the best sample.
  EXPECT_LE(std::abs(*view.offset_ms), *view.rtt_ms / 2 + 0.01);
  a->Stop();
  b->Stop();
}

TEST_F(PeerServiceTest, CallsGetTheirResponseAndFailCleanly) {
  auto a = Node(a_ip_, "aaaaaaaa000000000000000000000001", "alpha");
  auto b = Node(b_ip_, "bbbbbbbb000000000000000000000002", "beta");
  b->SetHelloProvider([](wire::Hello& hello) { hello.set_cluster_id("c-42"); });
  b->SetRequestHandler([](const wire::PeerMessage& request, PeerService::Reply reply) {
    wire::PeerMessage response;
    response.mutable_join_response()->set_ok(true);
    response.mutable_join_response()->set_cluster_id(request.join_request().member().name());
    reply(response);
  });
  std::string heard_cluster;
  a->SetPeerListener(
      {.on_hello = [&](Ipv4, const wire::Hello& hello) { heard_cluster = hello.cluster_id(); },
       .on_lost = nullptr});
  // b was never discovered: the call connects by address.
  wire::PeerMessage request;
  request.mutable_join_request()->mutable_member()->set_name("echo-me");
  std::optional<Result<wire::PeerMessage>> answer;
  a->Call(b_ip_, request, milliseconds(2000), [&](Result<wire::PeerMessage> r) { answer = r; });
  ASSERT_TRUE(RunUntil([&] { return answer.has_value(); }));
  ASSERT_TRUE(answer->ok()) << answer->error();
  EXPECT_EQ(answer->value().join_response().cluster_id(), "echo-me");
  EXPECT_EQ(heard_cluster, "c-42");
  // Nobody on the third address: a clear error, not a hang.
  std::optional<Result<wire::PeerMessage>> failed;
  a->Call(Ipv4{a_ip_.host_order + 7}, request, milliseconds(1000),
          [&](Result<wire::PeerMessage> r) { failed = r; });
  ASSERT_TRUE(RunUntil([&] { return failed.has_value(); }));
  EXPECT_FALSE(failed->ok());
  a->Stop();
  b->Stop();
}

TEST_F(PeerServiceTest, RefusedPeerPortMeansAPlainSdssPeer) {
  auto a = Node(a_ip_, "aaaaaaaa000000000000000000000001", "alpha");
  a->Track("cccccccc", b_ip_);  // nothing listens there
  ASSERT_TRUE(RunUntil([&] { return a->Lookup("cccccccc")->status.find("not a Synod") == 0; }));
  EXPECT_FALSE(a->Lookup("cccccccc")->is_synod);
  a->Untrack("cccccccc");
  EXPECT_FALSE(a->Lookup("cccccccc").has_value());
  a->Stop();
}

TEST_F(PeerServiceTest, ANodeWithAnotherIdIsNotTakenForTheDiscoveredOne) {
  auto a = Node(a_ip_, "aaaaaaaa000000000000000000000001", "alpha");
  auto b = Node(b_ip_, "bbbbbbbb000000000000000000000002", "beta");
  a->Track("dddddddd", b_ip_);
  ASSERT_TRUE(RunUntil([&] { return a->Lookup("dddddddd")->status.find("another node") == 0; }));
  EXPECT_FALSE(a->Lookup("dddddddd")->is_synod);
  a->Stop();
  b->Stop();
}

TEST_F(PeerServiceTest, GarbageOnThePeerPortIsDroppedAndServiceGoesOn) {
  auto b = Node(b_ip_, "bbbbbbbb000000000000000000000002", "beta");
  bool closed_by_service = false;
  TcpConnection::Connect(
      loop_, b_ip_, port_, milliseconds(1000), [&](std::shared_ptr<TcpConnection> connection, int) {
        ASSERT_TRUE(connection);
        connection->Start([](std::string_view) {}, [&](int) { closed_by_service = true; });
        connection->Write(std::string("\x00\x00\x00\x05garbage", 11));
      });
  ASSERT_TRUE(RunUntil([&] { return closed_by_service; }));
  auto a = Node(a_ip_, "aaaaaaaa000000000000000000000001", "alpha");
  a->Track("bbbbbbbb", b_ip_);
  EXPECT_TRUE(RunUntil([&] { return a->Lookup("bbbbbbbb")->is_synod; }));
  a->Stop();
  b->Stop();
}

std::shared_ptr<const TlsConfig> NewKey() {
  return TlsConfig::FromClusterKey(TlsConfig::GenerateClusterKey().value()).value();
}

TEST_F(PeerServiceTest, NodesWithOneKeyTalkOverTlsAndAnotherKeyIsRefused) {
  const auto key = NewKey();
  TlsRefusals refusals_a, refusals_c;
  auto a = Node(a_ip_, "aaaaaaaa000000000000000000000001", "alpha", key, &refusals_a);
  auto b = Node(b_ip_, "bbbbbbbb000000000000000000000002", "beta", key);
  const Ipv4 c_ip{a_ip_.host_order + 2};
  auto c = Node(c_ip, "cccccccc000000000000000000000003", "gamma", NewKey(), &refusals_c);
  a->Track("bbbbbbbb", b_ip_);
  a->Track("cccccccc", c_ip);
  ASSERT_TRUE(RunUntil([&] {
    auto view = a->Lookup("bbbbbbbb");
    return view && view->samples >= 4 && refusals_c.counts().contains("peer");
  }));
  EXPECT_TRUE(a->Lookup("bbbbbbbb")->is_synod);
  const PeerView stranger = *a->Lookup("cccccccc");
  EXPECT_FALSE(stranger.is_synod);
  EXPECT_EQ(stranger.samples, 0u);
  EXPECT_NE(stranger.status.find("cluster key"), std::string::npos) << stranger.status;
  a->Stop();
  b->Stop();
  c->Stop();
}

TEST_F(PeerServiceTest, IgnoredAndMalformedInputIsCountedAndTheNodeGoesOn) {
  auto a = Node(a_ip_, "aaaaaaaa000000000000000000000001", "alpha");
  auto b = Node(b_ip_, "bbbbbbbb000000000000000000000002", "beta");
  wire::PeerMessage unasked;
  unasked.mutable_join_response()->set_error("nobody asked");
  const std::string frames[] = {EncodeFrame(unasked.SerializeAsString()),
                                EncodeFrame(std::string(5, '\xff'))};
  for (const std::string& frame : frames) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    const sockaddr_in to = a_ip_.ToSockaddr(port_);
    std::thread sender([&] {
      if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0) {
        (void)send(fd, frame.data(), frame.size(), MSG_NOSIGNAL);
      }
    });
    RunUntil([] { return false; }, milliseconds(200));
    sender.join();
    close(fd);
  }
  EXPECT_EQ(a->stats().ignored_messages, 1u);
  EXPECT_EQ(a->stats().malformed_links, 1u);
  // Still serving others.
  b->Track("aaaaaaaa", a_ip_);
  EXPECT_TRUE(RunUntil([&] {
    auto view = b->Lookup("aaaaaaaa");
    return view && view->samples >= 1;
  }));
  a->Stop();
  b->Stop();
}

// File blocks and state chunks come back on a lane of their own: with 48 MiB of them queued at
// the sender, a small request on the control lane is still answered first (one TCP stream would
// deliver it after them).
TEST_F(PeerServiceTest, BulkAnswersDoNotHoldUpTheControlLane) {
  auto a = Node(a_ip_, "aaaaaaaa000000000000000000000001", "alpha");
  auto b = Node(b_ip_, "bbbbbbbb000000000000000000000002", "beta");
  const std::string block(4 << 20, 'x');
  b->SetRequestHandler([&](const wire::PeerMessage& request, PeerService::Reply reply) {
    wire::PeerMessage response;
    if (request.has_block_request()) {
      response.mutable_block_response()->set_data(block);
    } else {
      response.mutable_read_index_response()->set_index(7);
    }
    reply(response);
  });
  // Both lanes open first, so that neither answer waits for a connection.
  wire::PeerMessage block_request;
  block_request.mutable_block_request()->set_hash("h");
  wire::PeerMessage read_request;
  read_request.mutable_read_index_request();
  int warm = 0;
  a->Call(
      b_ip_, block_request, milliseconds(5000), [&](auto) { ++warm; }, PeerLane::kBulk);
  a->Call(b_ip_, read_request, milliseconds(5000), [&](auto) { ++warm; });
  ASSERT_TRUE(RunUntil([&] { return warm == 2; }));

  constexpr int kBlocks = 12;
  int blocks_done = 0;
  int blocks_done_before_control = -1;
  for (int i = 0; i < kBlocks; ++i) {
    a->Call(
        b_ip_, block_request, milliseconds(20000),
        [&](Result<wire::PeerMessage> response) {
          EXPECT_TRUE(response.ok()) << response.error();
          if (response.ok()) {
            EXPECT_EQ(response.value().block_response().data().size(), block.size());
          }
          ++blocks_done;
        },
        PeerLane::kBulk);
  }
  a->Call(b_ip_, read_request, milliseconds(20000), [&](Result<wire::PeerMessage> response) {
    EXPECT_TRUE(response.ok()) << response.error();
    blocks_done_before_control = blocks_done;
  });
  ASSERT_TRUE(RunUntil([&] { return blocks_done == kBlocks && blocks_done_before_control >= 0; },
                       milliseconds(30000)));
  EXPECT_LT(blocks_done_before_control, kBlocks / 2);
  a->Stop();
  b->Stop();
}

}  // namespace
}  // namespace synod

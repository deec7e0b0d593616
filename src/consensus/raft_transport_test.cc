#include "consensus/raft_transport.h"

extern "C" {
#include <raft.h>
#include <raft/uv.h>
}

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <functional>
#include <random>
#include <string>

#include "net/tcp.h"

namespace synod {
namespace {

using std::chrono::milliseconds;

class RaftTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device random;
    base_ = 0x7F000000u | ((random() % 200 + 20) << 16) | ((random() % 250) << 8);
  }

  std::string Address(uint32_t host, uint16_t port) const {
    return Ipv4{base_ | host}.ToString() + ":" + std::to_string(port);
  }

  // A port nobody listens on at `host`.
  uint16_t ClosedPort(uint32_t host) {
    TcpListener probe(loop_);
    EXPECT_TRUE(probe.Listen(Ipv4{base_ | host}, 0, "test", [](auto) {}).ok());
    return probe.port();  // closed again when `probe` goes
  }

  bool RunUntil(const std::function<bool()>& done, milliseconds deadline = milliseconds(5000)) {
    Timer poll(loop_);
    const auto give_up = std::chrono::steady_clock::now() + deadline;
    bool met = false;
    poll.Start(milliseconds(5), milliseconds(5), [&] {
      met = done();
      if (met || std::chrono::steady_clock::now() > give_up) loop_.Stop();
    });
    loop_.Run();
    return met;
  }

  // Closes a transport, running the loop until its close callback ran.
  void Close(raft_uv_transport* transport) {
    bool closed = false;
    transport->data = &closed;
    transport->close(transport, [](raft_uv_transport* t) { *static_cast<bool*>(t->data) = true; });
    EXPECT_TRUE(RunUntil([&] { return closed; }));
  }

  EventLoop loop_;
  uint32_t base_ = 0;
};

struct Outcome {
  bool done = false;
  int calls = 0;
  int status = -1;
  uv_stream_t* stream = nullptr;
};

void Connect(raft_uv_transport* transport, raft_uv_connect* request, Outcome* outcome, raft_id id,
             const std::string& address) {
  request->data = outcome;
  ASSERT_EQ(transport->connect(transport, request, id, address.c_str(),
                               [](raft_uv_connect* req, uv_stream_t* stream, int status) {
                                 auto* outcome = static_cast<Outcome*>(req->data);
                                 outcome->done = true;
                                 ++outcome->calls;
                                 outcome->status = status;
                                 outcome->stream = stream;
                               }),
            0);
}

// libraft's own TCP listener accepts our connection and reads who we are from the handshake:
// nodes with either transport interoperate.
TEST_F(RaftTransportTest, LibraftsListenerAcceptsOurHandshake) {
  raft_uv_transport listener{};
  ASSERT_EQ(raft_uv_tcp_init(&listener, loop_.raw()), 0);
  const uint16_t port = ClosedPort(2);
  const std::string listen_address = Address(2, port);
  ASSERT_EQ(listener.init(&listener, 2, listen_address.c_str()), 0);
  struct Accepted {
    raft_id id = 0;
    std::string address;
    uv_stream_t* stream = nullptr;
  } accepted;
  listener.data = &accepted;
  ASSERT_EQ(listener.listen(
                &listener,
                [](raft_uv_transport* t, raft_id id, const char* address, uv_stream_t* stream) {
                  auto* accepted = static_cast<Accepted*>(t->data);
                  accepted->id = id;
                  accepted->address = address;
                  accepted->stream = stream;
                }),
            0);

  RaftTransport ours(loop_, RaftTransportOptions{});
  ASSERT_TRUE(ours.Init().ok());
  raft_uv_transport* transport = ours.get();
  const std::string our_address = Address(3, 7401);  // a long-ish address: padding matters
  ASSERT_EQ(transport->init(transport, 0xfeedbeef12345678ull, our_address.c_str()), 0);
  raft_uv_connect request{};
  Outcome outcome;
  Connect(transport, &request, &outcome, 2, listen_address);
  ASSERT_TRUE(RunUntil([&] { return outcome.done && accepted.stream != nullptr; }));
  EXPECT_EQ(outcome.status, 0);
  EXPECT_EQ(accepted.id, 0xfeedbeef12345678ull);
  EXPECT_EQ(accepted.address, our_address);
  EXPECT_EQ(ours.stats().connected, 1u);

  // The connection carries the stall timeout and comes from our own address.
  uv_os_fd_t fd;
  ASSERT_EQ(uv_fileno(reinterpret_cast<uv_handle_t*>(outcome.stream), &fd), 0);
  unsigned user_timeout = 0;
  socklen_t size = sizeof user_timeout;
  ASSERT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, &size), 0);
  EXPECT_EQ(user_timeout, 1000u);
  sockaddr_in local{};
  socklen_t local_size = sizeof local;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size), 0);
  EXPECT_EQ(Ipv4::FromSockaddr(local), Ipv4{base_ | 3});

  uv_close(reinterpret_cast<uv_handle_t*>(outcome.stream),
           [](uv_handle_t* handle) { raft_free(handle); });
  uv_close(reinterpret_cast<uv_handle_t*>(accepted.stream),
           [](uv_handle_t* handle) { raft_free(handle); });
  Close(transport);
  Close(&listener);
  ours.Release();
  raft_uv_tcp_close(&listener);
}

TEST_F(RaftTransportTest, ARefusedConnectionFailsAndIsCounted) {
  RaftTransport ours(loop_, RaftTransportOptions{});
  ASSERT_TRUE(ours.Init().ok());
  raft_uv_transport* transport = ours.get();
  ASSERT_EQ(transport->init(transport, 3, Address(3, 7401).c_str()), 0);
  raft_uv_connect request{};
  Outcome outcome;
  Connect(transport, &request, &outcome, 2, Address(2, ClosedPort(2)));
  ASSERT_TRUE(RunUntil([&] { return outcome.done; }));
  EXPECT_EQ(outcome.status, RAFT_NOCONNECTION);
  EXPECT_EQ(outcome.calls, 1);
  EXPECT_EQ(outcome.stream, nullptr);
  EXPECT_EQ(ours.stats().failed_attempts, 1u);
  Close(transport);
}

// libraft frees its request only after the callback: closing must answer an attempt still in
// flight, once.
TEST_F(RaftTransportTest, ClosingAnswersAnAttemptInFlightOnce) {
  RaftTransport ours(loop_, RaftTransportOptions{milliseconds(60000), milliseconds(1000)});
  ASSERT_TRUE(ours.Init().ok());
  raft_uv_transport* transport = ours.get();
  ASSERT_EQ(transport->init(transport, 3, Address(3, 7401).c_str()), 0);
  raft_uv_connect request{};
  Outcome outcome;
  Connect(transport, &request, &outcome, 2, Address(2, ClosedPort(2)));
  Close(transport);  // before the refusal can arrive: the attempt is cancelled
  RunUntil([] { return false; }, milliseconds(100));  // anything late would show now
  EXPECT_EQ(outcome.calls, 1);
  EXPECT_TRUE(outcome.status == RAFT_CANCELED || outcome.status == RAFT_NOCONNECTION)
      << outcome.status;
}

}  // namespace
}  // namespace synod

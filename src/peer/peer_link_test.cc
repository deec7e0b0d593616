#include "peer/peer_link.h"

#include <gtest/gtest.h>

#include <optional>

namespace synod {
namespace {

using std::chrono::milliseconds;

TEST(PeerLink, APeerThatDoesNotReadFailsTheLinkInsteadOfGrowingItsBacklog) {
  EventLoop loop;
  SystemClock clock;
  const Ipv4 local = Ipv4::Parse("127.0.0.1").value();
  std::shared_ptr<TcpConnection> silent;  // accepted, never read
  TcpListener listener(loop);
  ASSERT_TRUE(listener.Listen(local, 0, "test", [&](auto tcp) { silent = tcp; }).ok());

  std::shared_ptr<PeerLink> link;
  std::optional<std::string> why;
  size_t sent = 0;
  wire::PeerMessage block;
  block.mutable_block_response()->set_data(std::string(1 << 20, 'x'));
  TcpConnection::Connect(loop, local, listener.port(), milliseconds(1000),
                         [&](std::shared_ptr<TcpConnection> tcp, int status) {
                           ASSERT_EQ(status, 0);
                           link = std::make_shared<PeerLink>(loop, tcp, clock);
                           link->Start([](const wire::PeerMessage&, int64_t) {},
                                       [&](const std::string& reason) {
                                         why = reason;
                                         loop.Stop();
                                       });
                           // Far more than the bound: the link must give up, not queue it all.
                           for (; sent < 2 * kMaxPeerBacklogBytes / (1 << 20) && !why; ++sent) {
                             link->Send(block);
                           }
                         });
  Timer deadline(loop);
  deadline.Start(milliseconds(10'000), milliseconds(0), [&] { loop.Stop(); });
  loop.Run();
  ASSERT_TRUE(why.has_value()) << "the link never failed after " << sent << " MiB";
  EXPECT_NE(why->find("reads too slowly"), std::string::npos) << *why;
  deadline.Stop();
  listener.Close();
  if (silent) silent->Close();
  loop.Run();  // let the closed handles go
}

}  // namespace
}  // namespace synod

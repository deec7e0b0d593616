#include "peer/peer_link.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

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

// A file block is sent from where it is, in a frame of its own making: the peer must still read
// the very message that was sent, whatever else goes with it.
TEST(PeerLink, ABlockSentWithoutACopyArrivesAsTheMessageSent) {
  EventLoop loop;
  SystemClock clock;
  const Ipv4 local = Ipv4::Parse("127.0.0.1").value();
  std::shared_ptr<PeerLink> receiver;
  std::vector<wire::PeerMessage> received;
  TcpListener listener(loop);
  ASSERT_TRUE(listener
                  .Listen(local, 0, "test",
                          [&](auto tcp) {
                            receiver = std::make_shared<PeerLink>(loop, tcp, clock);
                            receiver->Start(
                                [&](const wire::PeerMessage& message, int64_t) {
                                  received.push_back(message);
                                  if (received.size() == 3) loop.Stop();
                                },
                                [&](const std::string&) { loop.Stop(); });
                          })
                  .ok());
  std::vector<wire::PeerMessage> sent(3);
  sent[0].set_request_id(7);
  sent[0].mutable_block_response()->set_data(std::string(128 * 1024, 'a'));
  sent[1].set_request_id(8);
  sent[1].mutable_block_response()->set_error("not found");
  sent[2].set_request_id(9);
  std::string bytes(300'000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7919 % 251);
  sent[2].mutable_block_response()->set_data(bytes);
  sent[2].mutable_block_response()->set_error("carried along");
  std::shared_ptr<PeerLink> sender;
  TcpConnection::Connect(loop, local, listener.port(), milliseconds(1000),
                         [&](std::shared_ptr<TcpConnection> tcp, int status) {
                           ASSERT_EQ(status, 0);
                           sender = std::make_shared<PeerLink>(loop, tcp, clock);
                           sender->Start([](const wire::PeerMessage&, int64_t) {},
                                         [](const std::string&) {});
                           for (const wire::PeerMessage& message : sent) {
                             sender->Send(wire::PeerMessage(message));
                           }
                         });
  Timer deadline(loop);
  deadline.Start(milliseconds(10'000), milliseconds(0), [&] { loop.Stop(); });
  loop.Run();
  ASSERT_EQ(received.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(received[i].SerializeAsString(), sent[i].SerializeAsString()) << i;
  }
  deadline.Stop();
  listener.Close();
  sender->Close();
  receiver->Close();
  loop.Run();
}

}  // namespace
}  // namespace synod

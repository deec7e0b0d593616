#include "net/tls.h"

#include <gtest/gtest.h>

#include <string>

namespace synod {
namespace {

std::shared_ptr<const TlsConfig> NewKey() {
  Result<std::string> text = TlsConfig::GenerateClusterKey();
  EXPECT_TRUE(text.ok());
  Result<std::shared_ptr<const TlsConfig>> config = TlsConfig::FromClusterKey(text.value());
  EXPECT_TRUE(config.ok()) << config.status().message();
  return config.value();
}

// Two sessions joined back to back, as two nodes on one connection.
struct Pair {
  std::unique_ptr<TlsSession> client;
  std::unique_ptr<TlsSession> server;
  std::string to_server, to_client;  // in flight
  std::string client_got, server_got;
  Status client_status, server_status;

  Pair(const TlsConfig& client_config, const TlsConfig& server_config)
      : client(client_config.NewSession(true)), server(server_config.NewSession(false)) {
    EXPECT_TRUE(client->Begin(to_server).ok());
  }

  // Delivers what is in flight until nothing moves or a side fails.
  void Pump() {
    for (int round = 0; round < 20 && (!to_server.empty() || !to_client.empty()); ++round) {
      if (!to_server.empty() && server_status.ok()) {
        std::string bytes = std::move(to_server);
        to_server.clear();
        server_status = server->Receive(bytes, server_got, to_client);
      } else {
        to_server.clear();
      }
      if (!to_client.empty() && client_status.ok()) {
        std::string bytes = std::move(to_client);
        to_client.clear();
        client_status = client->Receive(bytes, client_got, to_server);
      } else {
        to_client.clear();
      }
    }
  }
};

TEST(Tls, NodesWithTheSameKeyTalkBothWays) {
  auto key = NewKey();
  Pair pair(*key, *key);
  // Sent before the handshake is done: held, then delivered.
  ASSERT_TRUE(pair.client->Send("hello from the client", pair.to_server).ok());
  pair.Pump();
  ASSERT_TRUE(pair.client_status.ok()) << pair.client_status.message();
  ASSERT_TRUE(pair.server_status.ok()) << pair.server_status.message();
  EXPECT_TRUE(pair.client->established());
  EXPECT_TRUE(pair.server->established());
  EXPECT_EQ(pair.server_got, "hello from the client");

  std::string big(3 * 1024 * 1024 + 17, 'x');
  for (size_t i = 0; i < big.size(); i += 4099) big[i] = static_cast<char>(i);
  ASSERT_TRUE(pair.server->Send(big, pair.to_client).ok());
  EXPECT_EQ(pair.to_client.find("xxxxxxxxxxxxxxxx"), std::string::npos) << "sent in clear";
  pair.Pump();
  EXPECT_EQ(pair.client_got, big);
}

TEST(Tls, ARecordDeliveredInPiecesStillDecrypts) {
  auto key = NewKey();
  Pair pair(*key, *key);
  pair.Pump();
  ASSERT_TRUE(pair.client->established());
  std::string wire;
  ASSERT_TRUE(pair.client->Send("in pieces", wire).ok());
  std::string got, back;
  for (char c : wire) ASSERT_TRUE(pair.server->Receive(std::string(1, c), got, back).ok());
  EXPECT_EQ(got, "in pieces");
}

TEST(Tls, AnotherKeyIsRefusedOnBothSidesAndNamed) {
  auto ours = NewKey();
  auto theirs = NewKey();
  Pair pair(*theirs, *ours);
  ASSERT_TRUE(pair.client->Send("secret", pair.to_server).ok());
  pair.Pump();
  EXPECT_FALSE(pair.server_status.ok());
  EXPECT_NE(pair.server_status.message().find("another cluster key"), std::string::npos)
      << pair.server_status.message();
  EXPECT_NE(pair.server_status.message().find(theirs->description()), std::string::npos)
      << pair.server_status.message();
  EXPECT_FALSE(pair.client_status.ok());
  EXPECT_TRUE(pair.server_got.empty());
  EXPECT_FALSE(pair.client->established());
}

TEST(Tls, APeerWithoutTlsIsToldApart) {
  auto key = NewKey();
  auto server = key->NewSession(false);
  std::string plain, wire;
  Status status = server->Receive(std::string("\0\0\0\x05hello", 9), plain, wire);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("does not use TLS"), std::string::npos) << status.message();
  EXPECT_TRUE(plain.empty());
}

TEST(Tls, ATamperedRecordIsRefused) {
  auto key = NewKey();
  Pair pair(*key, *key);
  pair.Pump();
  std::string wire;
  ASSERT_TRUE(pair.client->Send("transfer 10 to alice", wire).ok());
  wire[wire.size() - 3] ^= 1;
  std::string got, back;
  Status status = pair.server->Receive(wire, got, back);
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(got.empty());
  // Final: nothing more is accepted.
  std::string again;
  ASSERT_TRUE(pair.client->Send("more", again).ok());
  EXPECT_FALSE(pair.server->Receive(again, got, back).ok());
}

TEST(Tls, GarbageNeverCrashesAndFailsCleanly) {
  auto key = NewKey();
  for (int seed = 0; seed < 200; ++seed) {
    auto server = key->NewSession(seed % 2 == 0);
    std::string begin;
    ASSERT_TRUE(server->Begin(begin).ok());
    std::string junk(static_cast<size_t>(seed * 7 + 1), '\0');
    for (size_t i = 0; i < junk.size(); ++i)
      junk[i] = static_cast<char>((seed * 131 + i * 17) & 0xff);
    junk[0] = 0x16;  // past the "not TLS" check
    std::string plain, wire;
    Status status = server->Receive(junk, plain, wire);
    EXPECT_TRUE(plain.empty());
    (void)status;  // either waiting for more or refused; never plaintext, never a crash
  }
}

TEST(Tls, KeyFilesAreCheckedAndTheirContentNeverEchoed) {
  EXPECT_FALSE(TlsConfig::FromClusterKey("").ok());
  EXPECT_FALSE(TlsConfig::FromClusterKey("c2hvcnQ=").ok());  // "short"
  Result<std::shared_ptr<const TlsConfig>> bad =
      TlsConfig::FromClusterKey("this-is-not-base64-but-a-secret!");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("secret"), std::string::npos);
  Result<std::string> key = TlsConfig::GenerateClusterKey();
  ASSERT_TRUE(key.ok());
  EXPECT_TRUE(TlsConfig::FromClusterKey("  " + key.value() + "\n\n").ok());
  EXPECT_NE(TlsConfig::GenerateClusterKey().value(), key.value());
  // The same key is the same identity, whoever reads it.
  EXPECT_EQ(TlsConfig::FromClusterKey(key.value()).value()->description(),
            TlsConfig::FromClusterKey(key.value()).value()->description());
  EXPECT_EQ(TlsConfig::FromClusterKeyFile("/nonexistent/cluster.key").status().code(),
            StatusCode::kInvalid);
}

TEST(Tls, AnHttpsServerNeedsACertificateAndKeyItCanRead) {
  Result<std::shared_ptr<const TlsConfig>> missing =
      TlsConfig::ForHttpsServer("/nonexistent/api.pem", "/nonexistent/api.key");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalid);
  EXPECT_NE(missing.status().message().find("/nonexistent/api.pem"), std::string::npos)
      << missing.status().message();
}

}  // namespace
}  // namespace synod

// What TLS costs a node, per connection and per byte (bench/README.md). TlsSession is pure, so
// two sessions pumped into each other measure the CPU alone, with no network.
#include <benchmark/benchmark.h>

#include <string>

#include "net/tls.h"

namespace synod {
namespace {

std::shared_ptr<const TlsConfig> Key() {
  static const std::shared_ptr<const TlsConfig> key =
      TlsConfig::FromClusterKey(TlsConfig::GenerateClusterKey().value()).value();
  return key;
}

// Delivers each side's bytes to the other until neither has more to say.
bool Handshake(TlsSession& client, TlsSession& server) {
  std::string to_server, to_client, plain;
  if (!client.Begin(to_server).ok()) return false;
  while (!to_server.empty() || !to_client.empty()) {
    std::string bytes = std::move(to_server);
    to_server.clear();
    if (!bytes.empty() && !server.Receive(bytes, plain, to_client).ok()) return false;
    bytes = std::move(to_client);
    to_client.clear();
    if (!bytes.empty() && !client.Receive(bytes, plain, to_server).ok()) return false;
  }
  return client.established() && server.established();
}

// Both halves of one handshake: what a pair of nodes spends to open a link.
void BM_Handshake(benchmark::State& state) {
  auto key = Key();
  for (auto _ : state) {
    auto client = key->NewSession(true);
    auto server = key->NewSession(false);
    if (!Handshake(*client, *server)) state.SkipWithError("handshake failed");
  }
}
BENCHMARK(BM_Handshake);

// One message each way, as a Raft append and its answer.
void BM_Message(benchmark::State& state) {
  auto key = Key();
  auto client = key->NewSession(true);
  auto server = key->NewSession(false);
  if (!Handshake(*client, *server)) state.SkipWithError("handshake failed");
  const std::string message(static_cast<size_t>(state.range(0)), 'm');
  for (auto _ : state) {
    std::string wire, got, back;
    (void)client->Send(message, wire);
    (void)server->Receive(wire, got, back);
    benchmark::DoNotOptimize(got);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Message)->Arg(64)->Arg(4096)->Arg(1 << 20);

}  // namespace
}  // namespace synod

BENCHMARK_MAIN();

// The replicated state machine alone, without Raft or the network: how fast entries apply, and
// what a snapshot of a large state costs (capture on the loop, write in the background, restore).
//   build/state_machine_bench [--benchmark_format=json] [--benchmark_filter=Restore]
// Records are timer-sized: 20-byte keys, 80-byte values; entries carry 1024 writes, each with a
// request id, as the leader batches them.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "consensus/replicated_state.h"
#include "kv/kv_state.h"

namespace synod {
namespace {

constexpr int kBatch = 1024;

struct Node {
  Node() { state.Register(kv); }
  KvState kv;
  ReplicatedState state;
};

std::string Key(int64_t i) {
  std::string key = "timer-" + std::to_string(i);
  key.insert(6, 14 - std::min<size_t>(14, key.size() - 6), '0');
  return key;
}

std::string Value(int64_t i) {
  std::string value = "due=" + std::to_string(1700000000 + i) + ";url=http://127.0.0.1:9/hook";
  value.resize(80, '.');
  return value;
}

// Entries of kBatch writes of keys [first, first + count).
std::vector<std::string> Entries(int64_t first, int64_t count) {
  std::vector<std::string> entries;
  std::vector<wire::Op> ops;
  for (int64_t i = first; i < first + count; ++i) {
    Proposal put = KvState::Put(Key(i), Value(i));
    wire::Op& op = ops.emplace_back();
    op.set_module(put.module);
    op.set_version(1);
    op.set_body(std::move(put.body));
    op.set_request_id("bench-" + std::to_string(i));
    if (ops.size() == kBatch || i + 1 == first + count) {
      entries.push_back(EncodeEntry(i, ops));
      ops.clear();
    }
  }
  return entries;
}

void Load(Node& node, int64_t keys) {
  uint64_t index = 0;
  for (const auto& entry : Entries(0, keys)) node.state.Apply(++index, entry);
}

// As the engine writes a snapshot: 4 MiB chunks.
std::vector<std::string> WriteChunks(SnapshotProducer& producer) {
  std::vector<std::string> chunks;
  bool done = false;
  while (!done) {
    std::string& chunk = chunks.emplace_back();
    chunk.reserve((4 << 20) + (64 << 10));
    done = producer.Produce(chunk, 4 << 20);
  }
  return chunks;
}

std::string Write(SnapshotProducer& producer) {
  std::string out;
  for (const auto& chunk : WriteChunks(producer)) out += chunk;
  return out;
}

void BM_ApplyWrites(benchmark::State& state) {
  const auto entries = Entries(0, 200'000);
  for (auto _ : state) {
    state.PauseTiming();
    auto node = std::make_unique<Node>();
    state.ResumeTiming();
    uint64_t index = 0;
    for (const auto& entry : entries) node->state.Apply(++index, entry);
    state.PauseTiming();
    node.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * 200'000);
}
BENCHMARK(BM_ApplyWrites)->Unit(benchmark::kMillisecond);

// Capture (on the loop), then write the whole stream (in the background).
void BM_Snapshot(benchmark::State& state) {
  Node node;
  Load(node, state.range(0));
  size_t bytes = 0;
  double capture_ns = 0;
  for (auto _ : state) {
    const auto started = std::chrono::steady_clock::now();
    auto producer = node.state.Capture();
    capture_ns +=
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - started)
            .count();
    bytes = 0;
    for (const auto& chunk : WriteChunks(*producer)) bytes += chunk.size();
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["capture_us"] = capture_ns / 1e3 / static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Snapshot)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

void BM_Restore(benchmark::State& state) {
  std::string bytes;
  {
    Node node;
    Load(node, state.range(0));
    bytes = Write(*node.state.Capture());
  }
  for (auto _ : state) {
    auto node = std::make_unique<Node>();
    if (!node->state.Restore(bytes).ok()) state.SkipWithError("restore failed");
    benchmark::DoNotOptimize(node->kv.size());
    state.PauseTiming();
    node.reset();  // freeing the state is not restoring it
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Restore)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

// Writes while a snapshot view of 1M keys is alive: the first write to each shard copies it.
void BM_ApplyWhileCaptured(benchmark::State& state) {
  Node node;
  Load(node, 1'000'000);
  const auto entries = Entries(2'000'000, 20'480);
  for (auto _ : state) {
    state.PauseTiming();
    auto producer = node.state.Capture();
    state.ResumeTiming();
    uint64_t index = 1'000'000;
    for (const auto& entry : entries) node.state.Apply(++index, entry);
    state.PauseTiming();
    producer.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * 20'480);
}
BENCHMARK(BM_ApplyWhileCaptured)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace synod

BENCHMARK_MAIN();

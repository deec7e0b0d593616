#include "kv/kv_state.h"

#include <gtest/gtest.h>

#include "consensus/replicated_state.h"

namespace synod {
namespace {

Result<std::string> Apply(KvState& kv, const Proposal& proposal) {
  return kv.Apply(ApplyContext{}, proposal.version, proposal.body);
}

TEST(KvState, PutGetDeleteWithLimitsCheckedOnEveryNode) {
  KvState kv;
  ASSERT_TRUE(Apply(kv, KvState::Put("k", "v1")).ok());
  ASSERT_TRUE(Apply(kv, KvState::Put("k", "v2")).ok());
  EXPECT_EQ(kv.Get("k").value_or(""), "v2");
  EXPECT_EQ(kv.size(), 1u);
  EXPECT_EQ(Apply(kv, KvState::Put("", "x")).code(), StatusCode::kInvalid);
  EXPECT_EQ(Apply(kv, KvState::Put(std::string(1025, 'k'), "x")).code(), StatusCode::kInvalid);
  EXPECT_EQ(Apply(kv, KvState::Put("big", std::string(512 * 1024 + 1, 'x'))).code(),
            StatusCode::kTooLarge);
  EXPECT_EQ(Apply(kv, KvState::Delete("absent")).code(), StatusCode::kNotFound);
  EXPECT_EQ(kv.Apply(ApplyContext{}, 1, "\xff").code(), StatusCode::kInvalid);
  ASSERT_TRUE(Apply(kv, KvState::Delete("k")).ok());
  EXPECT_FALSE(kv.Get("k").has_value());
  EXPECT_EQ(kv.size(), 0u);
}

TEST(KvState, ManyKeysRoundTripThroughASnapshot) {
  KvState a, b;
  ReplicatedState registry_a, registry_b;
  registry_a.Register(a);
  registry_b.Register(b);
  for (int i = 0; i < 20000; ++i) {
    Apply(a, KvState::Put("key-" + std::to_string(i), std::string(i % 50, 'x')));
  }
  std::string bytes;
  auto producer = registry_a.Capture();
  while (!producer->Produce(bytes, 64 * 1024)) {
  }
  Apply(b, KvState::Put("stale", "gone after the restore"));
  ASSERT_TRUE(registry_b.Restore(bytes).ok());
  EXPECT_EQ(b.size(), 20000u);
  for (int i = 0; i < 20000; i += 7) {
    EXPECT_EQ(b.Get("key-" + std::to_string(i)).value_or("?"), std::string(i % 50, 'x'));
  }
  EXPECT_FALSE(b.Get("stale").has_value());
}

TEST(KvState, ASnapshotKeepsTheValuesOfItsIndexWhileKeysChange) {
  KvState a, b;
  ReplicatedState registry_a, registry_b;
  registry_a.Register(a);
  registry_b.Register(b);
  for (int i = 0; i < 5000; ++i) Apply(a, KvState::Put("key-" + std::to_string(i), "before"));
  auto producer = registry_a.Capture();
  // Written while the capture is read: replaced, deleted and new keys, none in the snapshot.
  for (int i = 0; i < 5000; i += 2) Apply(a, KvState::Put("key-" + std::to_string(i), "after"));
  for (int i = 1; i < 5000; i += 4) Apply(a, KvState::Delete("key-" + std::to_string(i)));
  Apply(a, KvState::Put("new", "after"));
  std::string bytes;
  while (!producer->Produce(bytes, 4096)) {
  }
  producer.reset();
  ASSERT_TRUE(registry_b.Restore(bytes).ok());
  EXPECT_EQ(b.size(), 5000u);
  for (int i = 0; i < 5000; ++i) {
    EXPECT_EQ(b.Get("key-" + std::to_string(i)).value_or("?"), "before") << i;
  }
  EXPECT_FALSE(b.Get("new").has_value());
  // And the live state has its own.
  EXPECT_EQ(a.Get("key-0").value_or("?"), "after");
  EXPECT_FALSE(a.Get("key-1").has_value());
  EXPECT_EQ(a.Get("key-3").value_or("?"), "before");
  EXPECT_EQ(a.size(), 5000u - 1250u + 1u);
}

}  // namespace
}  // namespace synod

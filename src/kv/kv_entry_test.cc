#include "kv/kv_entry.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace synod {
namespace {

TEST(KvEntry, HoldsItsKeyAndValueAndCopiesShareThem) {
  const std::string value(80, 'v');
  KvEntry entry("a key", value);
  EXPECT_EQ(entry.key(), "a key");
  EXPECT_EQ(entry.value(), value);

  KvEntry copy = entry;
  EXPECT_EQ(copy.value().data(), entry.value().data()) << "a copy shares the bytes";
  KvEntry other("other", "");
  EXPECT_EQ(other.value(), "");
  other = copy;
  EXPECT_EQ(other.key(), "a key");
  KvEntry moved = std::move(copy);
  EXPECT_EQ(moved.key(), "a key");
  entry = KvEntry("replaced", "x");
  EXPECT_EQ(other.value(), value) << "the others still hold the first bytes";
  EXPECT_EQ(entry.value(), "x");
}

TEST(KvEntry, CopiesAreReleasedOnOtherThreads) {
  std::vector<KvEntry> entries;
  for (int i = 0; i < 1000; ++i) entries.emplace_back("key-" + std::to_string(i), "value");
  std::vector<KvEntry> copies = entries;  // what a leaf copy for a snapshot does
  std::thread reader([copies = std::move(copies)]() mutable {
    size_t bytes = 0;
    for (const KvEntry& entry : copies) bytes += entry.key().size() + entry.value().size();
    EXPECT_GT(bytes, 0u);
    copies.clear();
  });
  entries.clear();
  reader.join();
}

}  // namespace
}  // namespace synod

#include "core/shared_bytes.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace synod {
namespace {

TEST(SharedBytes, HoldsItsTwoPartsAndCopiesShareThem) {
  const std::string value(80, 'v');
  SharedBytes entry("a key", value);
  EXPECT_EQ(SharedBytes("only").second(), "");
  EXPECT_EQ(entry.first(), "a key");
  EXPECT_EQ(entry.second(), value);

  SharedBytes copy = entry;
  EXPECT_EQ(copy.second().data(), entry.second().data()) << "a copy shares the bytes";
  SharedBytes other("other", "");
  EXPECT_EQ(other.second(), "");
  other = copy;
  EXPECT_EQ(other.first(), "a key");
  SharedBytes moved = std::move(copy);
  EXPECT_EQ(moved.first(), "a key");
  entry = SharedBytes("replaced", "x");
  EXPECT_EQ(other.second(), value) << "the others still hold the first bytes";
  EXPECT_EQ(entry.second(), "x");
}

TEST(SharedBytes, CopiesAreReleasedOnOtherThreads) {
  std::vector<SharedBytes> entries;
  for (int i = 0; i < 1000; ++i) entries.emplace_back("key-" + std::to_string(i), "value");
  std::vector<SharedBytes> copies = entries;  // what a leaf copy for a snapshot does
  std::thread reader([copies = std::move(copies)]() mutable {
    size_t bytes = 0;
    for (const SharedBytes& entry : copies) bytes += entry.first().size() + entry.second().size();
    EXPECT_GT(bytes, 0u);
    copies.clear();
  });
  entries.clear();
  reader.join();
}

}  // namespace
}  // namespace synod

#include "core/cow_map.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <thread>

namespace synod {
namespace {

TEST(CowMap, BehavesAsAMap) {
  CowMap<std::string, int> map;
  std::map<std::string, int> model;
  std::mt19937 random(7);
  for (int i = 0; i < 20000; ++i) {
    const std::string key = "k" + std::to_string(random() % 3000);
    switch (random() % 3) {
      case 0:
        EXPECT_EQ(map.Put(key, i), model.count(key) == 0);
        model[key] = i;
        break;
      case 1:
        EXPECT_EQ(map.Erase(key), model.erase(key) == 1);
        break;
      default:
        if (int* value = map.FindMutable(key)) {
          ++*value;
          ++model[key];
        } else {
          EXPECT_EQ(model.count(key), 0u);
        }
    }
  }
  ASSERT_EQ(map.size(), model.size());
  for (const auto& [key, value] : model) EXPECT_EQ(*map.Find(key), value);
  size_t visited = 0;
  map.ForEach([&](const std::string& key, int value) {
    EXPECT_EQ(model.at(key), value);
    ++visited;
  });
  EXPECT_EQ(visited, model.size());
}

TEST(CowMap, AFrozenViewKeepsItsContentWhileTheMapChanges) {
  CowMap<uint64_t, std::string> map;
  for (uint64_t i = 0; i < 10000; ++i) map.Put(i, "v" + std::to_string(i));
  const auto view = map.Freeze();
  for (uint64_t i = 0; i < 10000; i += 3) map.Erase(i);
  for (uint64_t i = 1; i < 10000; i += 3) *map.FindMutable(i) = "changed";
  for (uint64_t i = 10000; i < 12000; ++i) map.Put(i, "new");
  std::map<uint64_t, std::string> seen;
  decltype(view)::Cursor cursor;
  while (const auto* entry = view.Next(cursor)) seen.emplace(entry->first, entry->second);
  ASSERT_EQ(seen.size(), 10000u);
  EXPECT_EQ(view.size(), 10000u);
  for (uint64_t i = 0; i < 10000; ++i) EXPECT_EQ(seen[i], "v" + std::to_string(i)) << i;
  EXPECT_EQ(*map.Find(1), "changed");
  EXPECT_EQ(map.Find(0), nullptr);
}

TEST(CowMap, ViewsAreReadOnAnotherThreadWhileTheMapIsWritten) {
  CowMap<uint64_t, uint64_t> map;
  for (uint64_t i = 0; i < 50000; ++i) map.Put(i, i);
  auto view = map.Freeze();
  uint64_t sum = 0;
  std::thread reader([&view, &sum] {
    CowMap<uint64_t, uint64_t>::View::Cursor cursor;
    while (const auto* entry = view.Next(cursor)) sum += entry->second;
  });
  for (uint64_t i = 0; i < 50000; ++i) *map.FindMutable(i) = 0;  // the writer goes on
  reader.join();
  EXPECT_EQ(sum, 50000ull * 49999ull / 2) << "the reader saw the values as frozen";
}

TEST(CowMap, IterationOrderDependsOnlyOnTheContent) {
  CowMap<std::string, int> a, b;
  for (int i = 0; i < 500; ++i) a.Put("k" + std::to_string(i), i);
  for (int i = 499; i >= 0; --i) b.Put("k" + std::to_string(i), i);
  std::vector<std::string> order_a, order_b;
  a.ForEach([&](const std::string& key, int) { order_a.push_back(key); });
  b.ForEach([&](const std::string& key, int) { order_b.push_back(key); });
  EXPECT_EQ(order_a, order_b);
  // The shard layout is part of how snapshots are ordered: the hash must never change.
  EXPECT_EQ(StableHash(std::string_view("")), 14695981039346656037ull);
  EXPECT_EQ(StableHash(std::string_view("a")), 12638187200555641996ull);
}

}  // namespace
}  // namespace synod

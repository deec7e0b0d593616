// CowMap<K, V>: a map whose whole content can be frozen in O(shards) time and read later, on
// another thread, while the map keeps changing.
//
// The keys are spread over kShards shards by a hash that is the same on every machine and
// build; each shard is a sorted vector, shared by reference. Freeze() copies the shard
// pointers; a write to a shard that a frozen view still shares copies that shard first (about
// size()/kShards entries), so the cost of a snapshot is proportional to what changes while it
// is written, not to the size of the map. Iteration order (shard, then key) is deterministic.
//
// Thread-safety: the map itself is used from one thread. A View is immutable and may be read
// from any one thread, and destroyed on any thread, while the map is modified.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace synod {

// FNV-1a: stable across machines, builds and library versions (std::hash is not promised to be).
inline uint64_t StableHash(std::string_view key) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : key) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}
inline uint64_t StableHash(uint64_t key) {  // splitmix64's finalizer
  key = (key ^ (key >> 30)) * 0xbf58476d1ce4e5b9ull;
  key = (key ^ (key >> 27)) * 0x94d049bb133111ebull;
  return key ^ (key >> 31);
}

template <typename K, typename V>
class CowMap {
 public:
  static constexpr size_t kShards = 4096;
  using Entry = std::pair<K, V>;
  using Shard = std::vector<Entry>;

  // A frozen copy of the map. Copying a View is cheap.
  class View {
   public:
    View() = default;
    size_t size() const { return size_; }
    // Resumable iteration: Next() returns entries in order, then null.
    struct Cursor {
      size_t shard = 0;
      size_t position = 0;
    };
    const Entry* Next(Cursor& cursor) const {
      while (cursor.shard < shards_.size()) {
        const auto& shard = shards_[cursor.shard];
        if (shard && cursor.position < shard->size()) return &(*shard)[cursor.position++];
        ++cursor.shard;
        cursor.position = 0;
      }
      return nullptr;
    }

   private:
    friend class CowMap;
    std::vector<std::shared_ptr<const Shard>> shards_;
    size_t size_ = 0;
  };

  CowMap() : shards_(kShards) {}

  size_t size() const { return size_; }

  const V* Find(const K& key) const {
    const auto& shard = shards_[ShardOf(key)];
    if (!shard) return nullptr;
    auto it = Lower(*shard, key);
    return it != shard->end() && it->first == key ? &it->second : nullptr;
  }

  // Inserts or replaces; true if the key is new.
  bool Put(const K& key, V value) {
    Shard& shard = Writable(ShardOf(key));
    auto it = Lower(shard, key);
    if (it != shard.end() && it->first == key) {
      it->second = std::move(value);
      return false;
    }
    shard.emplace(it, key, std::move(value));
    ++size_;
    return true;
  }

  // The value of an existing key, to change in place; null if there is none.
  V* FindMutable(const K& key) {
    const size_t index = ShardOf(key);
    if (Find(key) == nullptr) return nullptr;
    Shard& shard = Writable(index);
    return &Lower(shard, key)->second;
  }

  bool Erase(const K& key) {
    const size_t index = ShardOf(key);
    if (Find(key) == nullptr) return false;
    Shard& shard = Writable(index);
    shard.erase(Lower(shard, key));
    --size_;
    return true;
  }

  void Clear() {
    for (auto& shard : shards_) shard.reset();
    size_ = 0;
  }

  View Freeze() const {
    View view;
    view.shards_.assign(shards_.begin(), shards_.end());
    view.size_ = size_;
    return view;
  }

  // Every entry, in the same order as a View's.
  template <typename F>
  void ForEach(F visit) const {
    for (const auto& shard : shards_) {
      if (!shard) continue;
      for (const Entry& entry : *shard) visit(entry.first, entry.second);
    }
  }

 private:
  static size_t ShardOf(const K& key) { return StableHash(key) % kShards; }
  static auto Lower(const Shard& shard, const K& key) {
    return std::lower_bound(shard.begin(), shard.end(), key,
                            [](const Entry& entry, const K& k) { return entry.first < k; });
  }
  static auto Lower(Shard& shard, const K& key) {
    return std::lower_bound(shard.begin(), shard.end(), key,
                            [](const Entry& entry, const K& k) { return entry.first < k; });
  }
  // The shard, copied first if a View shares it. Only this thread makes new references, so a
  // count of one cannot grow behind our back.
  Shard& Writable(size_t index) {
    auto& shard = shards_[index];
    if (!shard) {
      shard = std::make_shared<Shard>();
    } else if (shard.use_count() > 1) {
      shard = std::make_shared<Shard>(*shard);
    }
    return *shard;
  }

  std::vector<std::shared_ptr<Shard>> shards_;
  size_t size_ = 0;
};

}  // namespace synod

// CowTable<Entry> and CowMap<K, V>: tables whose whole content can be frozen in O(1)-ish time
// and read later, on another thread, while the table keeps changing.
//
// The keys are spread by a hash that is the same on every machine and build over 16,384 small
// sorted vectors (leaves), reached through 64 nodes of 256 leaves each; nodes and leaves are
// shared by reference. Freeze() copies the 64 node pointers. A write to a node or leaf that a
// frozen view still shares copies it first: a node is 256 pointers, a leaf about size()/16,384
// entries (60 for a million). So a snapshot costs the loop a few microseconds, and each write while
// one is being saved at most one small copy; nothing is proportional to the size of the table.
// Iteration order (leaf, then key) depends only on the content.
//
// CowTable holds entries that carry their own key: `entry.key()` is ordered (<, ==) and hashed
// (StableHash) like the keys it is looked up by. An entry that shares its bytes by reference
// makes leaf copies cheap and can keep a key and its value in one allocation
// (core/shared_bytes.h).
// CowMap<K, V> is a CowTable of (key, value) pairs.
//
// Thread-safety: the table itself is used from one thread. A View is immutable and may be read
// from any one thread, and destroyed on any thread, while the table is modified.
#pragma once

#include <algorithm>
#include <array>
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

template <typename Entry>
class CowTable {
 public:
  static constexpr size_t kNodes = 64;
  static constexpr size_t kFanout = 256;  // leaves per node
  static constexpr size_t kLeaves = kNodes * kFanout;
  using Leaf = std::vector<Entry>;
  using Node = std::array<std::shared_ptr<Leaf>, kFanout>;

  // A frozen copy of the table. Copying a View is cheap.
  class View {
   public:
    View() = default;
    size_t size() const { return size_; }
    // Resumable iteration: Next() returns entries in order, then null.
    struct Cursor {
      size_t leaf = 0;
      size_t position = 0;
    };
    const Entry* Next(Cursor& cursor) const {
      while (cursor.leaf < kLeaves) {
        const auto& node = nodes_[cursor.leaf / kFanout];
        if (!node) {
          cursor.leaf = (cursor.leaf / kFanout + 1) * kFanout;
          cursor.position = 0;
          continue;
        }
        const auto& leaf = (*node)[cursor.leaf % kFanout];
        if (leaf && cursor.position < leaf->size()) return &(*leaf)[cursor.position++];
        ++cursor.leaf;
        cursor.position = 0;
      }
      return nullptr;
    }

   private:
    friend class CowTable;
    std::array<std::shared_ptr<const Node>, kNodes> nodes_;
    size_t size_ = 0;
  };

  size_t size() const { return size_; }

  template <typename Key>
  const Entry* Find(const Key& key) const {
    const Leaf* leaf = LeafOf(SlotOf(key));
    if (leaf == nullptr) return nullptr;
    auto it = Lower(*leaf, key);
    return it != leaf->end() && it->key() == key ? &*it : nullptr;
  }

  // Inserts `entry`, or replaces the one with its key; true if the key is new.
  bool Put(Entry entry) {
    Leaf& leaf = Writable(SlotOf(entry.key()));
    auto it = Lower(leaf, entry.key());
    if (it != leaf.end() && it->key() == entry.key()) {
      *it = std::move(entry);
      return false;
    }
    leaf.insert(it, std::move(entry));
    ++size_;
    return true;
  }

  // An existing entry, to change in place (not its key); null if there is none.
  template <typename Key>
  Entry* FindMutable(const Key& key) {
    if (Find(key) == nullptr) return nullptr;
    Leaf& leaf = Writable(SlotOf(key));
    return &*Lower(leaf, key);
  }

  template <typename Key>
  bool Erase(const Key& key) {
    if (Find(key) == nullptr) return false;
    Leaf& leaf = Writable(SlotOf(key));
    leaf.erase(Lower(leaf, key));
    --size_;
    return true;
  }

  void Clear() {
    for (auto& node : nodes_) node.reset();
    size_ = 0;
  }

  View Freeze() const {
    View view;
    for (size_t i = 0; i < kNodes; ++i) view.nodes_[i] = nodes_[i];
    view.size_ = size_;
    return view;
  }

  // Every entry, in the same order as a View's.
  template <typename F>
  void ForEach(F visit) const {
    for (const auto& node : nodes_) {
      if (!node) continue;
      for (const auto& leaf : *node) {
        if (!leaf) continue;
        for (const Entry& entry : *leaf) visit(entry);
      }
    }
  }

 private:
  template <typename Key>
  static size_t SlotOf(const Key& key) {
    return StableHash(key) % kLeaves;
  }
  template <typename L, typename Key>
  static auto Lower(L& leaf, const Key& key) {
    return std::lower_bound(leaf.begin(), leaf.end(), key,
                            [](const Entry& entry, const Key& k) { return entry.key() < k; });
  }
  const Leaf* LeafOf(size_t slot) const {
    const auto& node = nodes_[slot / kFanout];
    return node ? (*node)[slot % kFanout].get() : nullptr;
  }
  // The leaf, with its node, copied first where a View shares them. Only this thread makes new
  // references, so a count of one cannot grow behind our back.
  Leaf& Writable(size_t slot) {
    auto& node = nodes_[slot / kFanout];
    if (!node) {
      node = std::make_shared<Node>();
    } else if (node.use_count() > 1) {
      node = std::make_shared<Node>(*node);  // its leaves are now shared with the view's copy
    }
    auto& leaf = (*node)[slot % kFanout];
    if (!leaf) {
      leaf = std::make_shared<Leaf>();
    } else if (leaf.use_count() > 1) {
      leaf = std::make_shared<Leaf>(*leaf);
    }
    return *leaf;
  }

  std::array<std::shared_ptr<Node>, kNodes> nodes_;
  size_t size_ = 0;
};

template <typename K, typename V>
struct CowMapEntry {
  K first;
  V second;
  const K& key() const { return first; }
};

template <typename K, typename V>
class CowMap {
 public:
  using Entry = CowMapEntry<K, V>;
  using View = typename CowTable<Entry>::View;

  size_t size() const { return table_.size(); }
  const V* Find(const K& key) const {
    const Entry* entry = table_.Find(key);
    return entry ? &entry->second : nullptr;
  }
  // Inserts or replaces; true if the key is new.
  bool Put(K key, V value) { return table_.Put(Entry{std::move(key), std::move(value)}); }
  // The value of an existing key, to change in place; null if there is none.
  V* FindMutable(const K& key) {
    Entry* entry = table_.FindMutable(key);
    return entry ? &entry->second : nullptr;
  }
  bool Erase(const K& key) { return table_.Erase(key); }
  void Clear() { table_.Clear(); }
  View Freeze() const { return table_.Freeze(); }
  // Every (key, value), in the same order as a View's.
  template <typename F>
  void ForEach(F visit) const {
    table_.ForEach([&](const Entry& entry) { visit(entry.first, entry.second); });
  }

 private:
  CowTable<Entry> table_;
};

}  // namespace synod

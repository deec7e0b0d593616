// KvEntry: one key and its value, in one immutable, reference-counted allocation.
//
// The KV state holds a million of these. A std::pair of two std::strings costs 64 bytes in the
// leaf plus two allocations (about 190 bytes for a 20-byte key and an 80-byte value); a KvEntry
// costs 8 bytes in the leaf plus one allocation of 12 bytes more than the key and value (120 in
// all). And copying one, which is what copying a leaf shared with a snapshot does, takes a
// reference instead of copying the bytes, so the snapshot that holds the old leaf and the table
// share them and freeing the copy frees no small blocks scattered among live ones.
//
// Thread-safety: the bytes are immutable and the count atomic, so copies of one entry may be
// held and destroyed on different threads. Sizes are up to 4 GiB each.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>
#include <utility>

namespace synod {

class KvEntry {
 public:
  KvEntry(std::string_view key, std::string_view value);
  KvEntry(const KvEntry& other) noexcept : blob_(other.blob_) {
    blob_->references.fetch_add(1, std::memory_order_relaxed);
  }
  KvEntry(KvEntry&& other) noexcept : blob_(std::exchange(other.blob_, nullptr)) {}
  KvEntry& operator=(KvEntry other) noexcept {
    std::swap(blob_, other.blob_);
    return *this;
  }
  ~KvEntry() { Release(); }

  std::string_view key() const { return {blob_->bytes(), blob_->key_size}; }
  std::string_view value() const { return {blob_->bytes() + blob_->key_size, blob_->value_size}; }

 private:
  // The header; the key's bytes and then the value's follow it in the same allocation.
  struct Blob {
    std::atomic<uint32_t> references;
    uint32_t key_size;
    uint32_t value_size;
    char* bytes() { return reinterpret_cast<char*>(this + 1); }
  };
  void Release() noexcept;

  Blob* blob_;  // null only once moved from
};

}  // namespace synod

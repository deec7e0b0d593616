// SharedBytes: immutable bytes in two parts (a key and its value, say), in one reference-counted
// allocation.
//
// Made for the entries of the replicated state's tables (core/cow_map.h), which hold millions of
// them. A std::string costs 32 bytes in place plus its own allocation; a SharedBytes costs 8 in
// place plus one allocation of 12 bytes more than both parts. And copying one, which is what
// copying a table leaf shared with a snapshot does, takes a reference instead of copying the
// bytes: the snapshot and the table share them, and dropping the snapshot's copy frees no small
// blocks scattered among live ones (the fragmentation that kept a node's memory high after a
// bulk load).
//
// Thread-safety: the bytes are immutable and the count atomic, so copies of one SharedBytes may
// be held and destroyed on different threads. Each part is up to 4 GiB.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>
#include <utility>

namespace synod {

class SharedBytes {
 public:
  explicit SharedBytes(std::string_view first, std::string_view second = {});
  SharedBytes(const SharedBytes& other) noexcept : blob_(other.blob_) {
    blob_->references.fetch_add(1, std::memory_order_relaxed);
  }
  SharedBytes(SharedBytes&& other) noexcept : blob_(std::exchange(other.blob_, nullptr)) {}
  SharedBytes& operator=(SharedBytes other) noexcept {
    std::swap(blob_, other.blob_);
    return *this;
  }
  ~SharedBytes() { Release(); }

  std::string_view first() const { return {blob_->bytes(), blob_->first_size}; }
  std::string_view second() const {
    return {blob_->bytes() + blob_->first_size, blob_->second_size};
  }

 private:
  // The header; the first part's bytes and then the second's follow it in the same allocation.
  struct Blob {
    std::atomic<uint32_t> references;
    uint32_t first_size;
    uint32_t second_size;
    char* bytes() { return reinterpret_cast<char*>(this + 1); }
  };
  void Release() noexcept;

  Blob* blob_;  // null only once moved from
};

}  // namespace synod

#include "kv/kv_entry.h"

#include <cstring>
#include <new>

namespace synod {

KvEntry::KvEntry(std::string_view key, std::string_view value) {
  void* memory = ::operator new(sizeof(Blob) + key.size() + value.size());
  blob_ =
      new (memory) Blob{1, static_cast<uint32_t>(key.size()), static_cast<uint32_t>(value.size())};
  std::memcpy(blob_->bytes(), key.data(), key.size());
  std::memcpy(blob_->bytes() + key.size(), value.data(), value.size());
}

void KvEntry::Release() noexcept {
  if (blob_ == nullptr || blob_->references.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  blob_->~Blob();
  ::operator delete(blob_);
}

}  // namespace synod

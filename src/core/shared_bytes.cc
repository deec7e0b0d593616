#include "core/shared_bytes.h"

#include <cstring>
#include <new>

namespace synod {

SharedBytes::SharedBytes(std::string_view first, std::string_view second) {
  void* memory = ::operator new(sizeof(Blob) + first.size() + second.size());
  blob_ = new (memory)
      Blob{1, static_cast<uint32_t>(first.size()), static_cast<uint32_t>(second.size())};
  // An empty part may have no data pointer at all, which memcpy must not be given.
  if (!first.empty()) std::memcpy(blob_->bytes(), first.data(), first.size());
  if (!second.empty()) std::memcpy(blob_->bytes() + first.size(), second.data(), second.size());
}

void SharedBytes::Release() noexcept {
  if (blob_ == nullptr || blob_->references.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  blob_->~Blob();
  ::operator delete(blob_);
}

}  // namespace synod

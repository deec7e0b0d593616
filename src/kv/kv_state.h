// KvState: the "kv" state module, a replicated key/value surface (for tests, benchmarks and
// small cluster-wide settings).
//
// Keys are 1-1024 bytes, values up to 512 KiB. Held in a CowTable, each key with its value in one
// SharedBytes, so a snapshot of millions of keys costs the loop only the leaves written while it
// is being saved, and each key 20 bytes plus the key's and the value's sizes. Pure and
// deterministic; loop thread only.
#pragma once

#include <optional>
#include <string>

#include "consensus/state_module.h"
#include "core/cow_map.h"
#include "core/shared_bytes.h"

namespace synod {

class KvState final : public StateModule {
 public:
  static constexpr std::string_view kName = "kv";
  static constexpr size_t kMaxKeyBytes = 1024;
  static constexpr size_t kMaxValueBytes = 512 * 1024;

  static Proposal Put(const std::string& key, const std::string& value);
  static Proposal Delete(const std::string& key);
  // The first problem with a key or value, before anything is proposed.
  static Status Check(const std::string& key, const std::string* value);

  std::optional<std::string> Get(const std::string& key) const;
  size_t size() const { return entries_.size(); }

  // StateModule.
  std::string_view name() const override { return kName; }
  Result<std::string> Apply(const ApplyContext& context, uint32_t version,
                            std::string_view command) override;
  std::unique_ptr<SectionCapture> Capture() const override;
  std::unique_ptr<SectionLoader> NewLoader(uint32_t version) override;

 private:
  struct Entry {
    SharedBytes bytes;  // the key, then the value
    std::string_view key() const { return bytes.first(); }
    std::string_view value() const { return bytes.second(); }
  };
  using Table = CowTable<Entry>;
  Table entries_;
};

}  // namespace synod

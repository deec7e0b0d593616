// KvState: the "kv" state module, a replicated key/value surface (for tests, benchmarks and
// small cluster-wide settings).
//
// Keys are 1-1024 bytes, values up to 512 KiB. Held in a CowTable of KvEntry (a key and its value
// in one shared allocation), so a snapshot of millions of keys costs the loop only the leaves
// written while it is being saved, and each key about 120 bytes plus its size. Pure and
// deterministic; loop thread only.
#pragma once

#include <optional>
#include <string>

#include "consensus/state_module.h"
#include "core/cow_map.h"
#include "kv/kv_entry.h"

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
  using Table = CowTable<KvEntry>;
  Table entries_;
};

}  // namespace synod

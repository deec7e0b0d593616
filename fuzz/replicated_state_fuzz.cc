// Any bytes as a snapshot stream or a log entry: the registry refuses or applies them, never
// crashes, and a refused restore leaves the state as it was.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "consensus/members_state.h"
#include "consensus/replicated_state.h"
#include "kv/kv_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  synod::MembersState members;
  synod::KvState kv;
  synod::ReplicatedState state;
  state.Register(members);
  state.Register(kv);
  (void)state.Apply(1, synod::EncodeEntry(1, {}));
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // As a snapshot, fed in uneven pieces as chunks arrive from a peer.
  auto session = state.BeginRestore();
  synod::Status fed;
  for (size_t at = 0, piece = 1; at < input.size() && fed.ok();
       at += piece, piece = piece * 3 % 61 + 1) {
    fed = session->Feed(input.substr(at, piece));
  }
  const size_t keys_before = kv.size();
  if (!fed.ok() || !session->Commit().ok()) {
    if (kv.size() != keys_before) std::abort();  // a refused restore changed the state
  }
  // As a log entry.
  (void)state.Apply(2, input);
  return 0;
}

#include "clock/master_policy.h"

#include <arpa/inet.h>

namespace synod {

Result<MasterPolicy> ParseMasterPolicy(const std::string& name) {
  if (name == "lowest-ip") return MasterPolicy::kLowestIp;
  return Status::Error("unknown master policy '" + name + "' (known: lowest-ip)");
}

std::optional<std::string> AddressKey(const std::string& ip) {
  unsigned char bytes[16] = {};
  if (inet_pton(AF_INET, ip.c_str(), bytes) == 1) {
    return std::string("4") + std::string(reinterpret_cast<char*>(bytes), 4);
  }
  if (inet_pton(AF_INET6, ip.c_str(), bytes) == 1) {
    return std::string("6") + std::string(reinterpret_cast<char*>(bytes), 16);
  }
  return std::nullopt;
}

std::optional<std::string> ChooseMaster(MasterPolicy policy,
                                        const std::vector<MasterCandidate>& candidates) {
  switch (policy) {
    case MasterPolicy::kLowestIp: {
      std::optional<std::pair<std::string, std::string>> best;  // (key, id)
      for (const auto& candidate : candidates) {
        auto key = AddressKey(candidate.ip);
        if (!key) continue;
        if (!best || std::make_pair(*key, candidate.id) < *best) best = {*key, candidate.id};
      }
      if (!best) return std::nullopt;
      return best->second;
    }
  }
  return std::nullopt;
}

}  // namespace synod

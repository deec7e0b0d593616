// Which member's clock is the master: a policy, applied by the leader and committed to the log.
//
// kLowestIp: the live member with the lowest IP address, compared as an address (9.0.0.1 comes
// before 10.0.0.10; IPv4 before IPv6; IPv6 by its 16 bytes). The seed compared the digits of
// the address as one integer, which orders 10.0.0.10 before 9.0.0.1; this does not.
// Pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace synod {

enum class MasterPolicy { kLowestIp };
Result<MasterPolicy> ParseMasterPolicy(const std::string& name);

struct MasterCandidate {
  std::string id;
  std::string ip;
};

// A sortable form of an IPv4 or IPv6 address; nothing for what is neither.
std::optional<std::string> AddressKey(const std::string& ip);

// The chosen member's id; nothing when no candidate has a valid address.
std::optional<std::string> ChooseMaster(MasterPolicy policy,
                                        const std::vector<MasterCandidate>& candidates);

}  // namespace synod

// IPv4 addresses and the local interface that owns one.
//
// Ipv4 is a value type holding an address in host byte order, so that addresses compare
// numerically (9.0.0.1 < 10.0.0.10). LocalInterfaceFor() asks the kernel which interface owns an
// address; it is how a node bound to 127.0.0.5 learns that its broadcast address is
// 127.255.255.255 and that only beacons from 127.0.0.0/8 concern it.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace synod {

struct Ipv4 {
  uint32_t host_order = 0;

  static Result<Ipv4> Parse(std::string_view text);
  static Ipv4 FromSockaddr(const sockaddr_in& addr) { return Ipv4{ntohl(addr.sin_addr.s_addr)}; }
  sockaddr_in ToSockaddr(uint16_t port) const;
  std::string ToString() const;
  bool IsLoopback() const { return (host_order >> 24) == 127; }

  auto operator<=>(const Ipv4&) const = default;
};

struct Subnet {
  Ipv4 network;
  uint32_t mask = 0;  // host order
  bool Contains(Ipv4 address) const {
    return (address.host_order & mask) == (network.host_order & mask);
  }
  Ipv4 DirectedBroadcast() const { return Ipv4{(network.host_order & mask) | ~mask}; }
};

struct LocalInterface {
  std::string name;
  Subnet subnet;
};

// Finds the interface whose subnet holds `address` and checks that the address can be bound on
// this machine. Errors: not an address of this machine, or no interface found.
Result<LocalInterface> LocalInterfaceFor(Ipv4 address);

// Parses "host:port" (IPv4 dotted quad) as used by --node and peer lists.
struct HostPort {
  Ipv4 ip;
  uint16_t port = 0;
  std::string ToString() const { return ip.ToString() + ":" + std::to_string(port); }
};
Result<HostPort> ParseHostPort(std::string_view text, uint16_t default_port);

}  // namespace synod

#include "net/ipv4.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace synod {

Result<Ipv4> Ipv4::Parse(std::string_view text) {
  const std::string copy(text);
  in_addr parsed{};
  if (copy.empty() || inet_pton(AF_INET, copy.c_str(), &parsed) != 1) {
    return Status::Error("'" + copy + "' is not an IPv4 address (expected a.b.c.d)");
  }
  return Ipv4{ntohl(parsed.s_addr)};
}

sockaddr_in Ipv4::ToSockaddr(uint16_t port) const {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(host_order);
  return addr;
}

std::string Ipv4::ToString() const {
  in_addr addr{htonl(host_order)};
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addr, text, sizeof text);
  return text;
}

Result<LocalInterface> LocalInterfaceFor(Ipv4 address) {
  // Binding proves the address is ours (127.0.0.x counts: all of 127/8 is local).
  int probe = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (probe < 0)
    return Status::Error(std::string("cannot create a socket: ") + std::strerror(errno));
  sockaddr_in bind_addr = address.ToSockaddr(0);
  int rc = ::bind(probe, reinterpret_cast<sockaddr*>(&bind_addr), sizeof bind_addr);
  int bind_errno = errno;
  ::close(probe);
  if (rc != 0) {
    if (bind_errno == EADDRNOTAVAIL) {
      return Status::Error(address.ToString() + " is not an address of this machine");
    }
    return Status::Error("cannot bind " + address.ToString() + ": " + std::strerror(bind_errno));
  }

  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    return Status::Error(std::string("cannot list network interfaces: ") + std::strerror(errno));
  }
  Result<LocalInterface> found = Status::Error("no network interface holds " + address.ToString());
  bool exact = false;
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr || it->ifa_netmask == nullptr ||
        it->ifa_addr->sa_family != AF_INET) {
      continue;
    }
    Ipv4 own = Ipv4::FromSockaddr(*reinterpret_cast<sockaddr_in*>(it->ifa_addr));
    uint32_t mask = ntohl(reinterpret_cast<sockaddr_in*>(it->ifa_netmask)->sin_addr.s_addr);
    Subnet subnet{own, mask};
    if (!subnet.Contains(address)) continue;
    // Prefer the interface that has exactly this address, then the narrowest subnet.
    bool is_exact = own == address;
    if (!found.ok() || (is_exact && !exact) ||
        (is_exact == exact && mask > found.value().subnet.mask)) {
      found = LocalInterface{it->ifa_name, subnet};
      exact = is_exact;
    }
  }
  freeifaddrs(list);
  return found;
}

Result<HostPort> ParseHostPort(std::string_view text, uint16_t default_port) {
  const std::string shown(text);
  std::string_view host = text;
  uint16_t port = default_port;
  if (size_t colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    std::string_view port_text = text.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
        value == 0 || value > 65535) {
      return Status::Error("invalid address '" + shown + "': port must be 1-65535");
    }
    port = static_cast<uint16_t>(value);
  }
  Result<Ipv4> ip = Ipv4::Parse(host);
  if (!ip.ok()) return Status::Error("invalid address '" + shown + "': " + ip.error());
  return HostPort{ip.value(), port};
}

}  // namespace synod

// SdssService: the SDSS discovery protocol on the wire, feeding a NeighborTable.
//
// Owns a UDP receiver on 0.0.0.0:<broadcast port> (SO_REUSEADDR + SO_REUSEPORT, so that several
// nodes and SDSS peers share a host), a UDP sender bound to the node's own address that
// broadcasts "<id> ON <port>" every beacon interval, and the TCP timestamp server on an
// OS-chosen port, which sends each client its UTC time and closes. It is the NeighborTable's
// ProbeTransport: probes connect from the node's own address, never block the loop, and report
// refused, reset and timed-out connections distinctly.
// Loop thread only.
#pragma once

#include <uv.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/event_loop.h"
#include "discovery/neighbor_table.h"
#include "net/tcp.h"

namespace synod {

struct ProbeState;

struct SdssOptions {
  std::string self_id;
  Ipv4 bind_ip;
  Subnet subnet;
  Ipv4 broadcast_ip;
  uint16_t broadcast_port = 35498;
  std::chrono::milliseconds beacon_interval{1000};
  std::chrono::milliseconds probe_timeout{2000};
};

class SdssService final : public ProbeTransport {
 public:
  SdssService(EventLoop& loop, const Clock& clock, SdssOptions options);
  ~SdssService() override;

  // Opens the sockets and starts beaconing. Errors name the port or address that failed.
  Status Start();
  void Stop();

  // Beacons (and counts silence) every `interval` from now on.
  void SetBeaconInterval(std::chrono::milliseconds interval);

  NeighborTable& table() { return table_; }
  const NeighborTable& table() const { return table_; }
  uint16_t timestamp_port() const { return timestamp_server_.port(); }

  void Probe(Ipv4 ip, uint16_t port, std::function<void(ProbeOutcome)> done) override;

 private:
  Status OpenReceiver();
  Status OpenSender();
  void ServeTimestamp(std::shared_ptr<TcpConnection> client);
  void StartBeacons(std::chrono::milliseconds first);
  void SendBeacon();
  void SweepServedClients();

  EventLoop& loop_;
  const Clock& clock_;
  SdssOptions options_;
  NeighborTable table_;
  TcpListener timestamp_server_;
  uv_udp_t* receiver_ = nullptr;
  uv_udp_t* sender_ = nullptr;
  std::string beacon_;
  Timer beacon_timer_;
  // Timestamp clients still connected, with when they were accepted (closed after 2 s).
  std::map<std::shared_ptr<TcpConnection>, MonoTime> served_;
  std::vector<std::weak_ptr<ProbeState>> probes_;  // in flight, failed by Stop()
  uint64_t send_errors_ = 0;
};

}  // namespace synod

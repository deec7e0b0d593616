// PeerSender: what a module that talks to other nodes uses of the peer protocol.
//
// One-way messages and request/response calls to the Synod node at an address. PeerService is
// the real one (TCP links, reconnection, lanes); a simulation delivers, delays, reorders or
// drops messages on virtual time behind the same interface. Loop thread only; callbacks run on
// the loop thread.
#pragma once

#include <chrono>
#include <functional>
#include <optional>

#include "core/status.h"
#include "net/ipv4.h"
#include "proto/peer.pb.h"

namespace synod {

// Which connection a call travels on. TCP delivers a stream in order, so a megabyte queued on a
// connection holds up everything behind it: bulk answers (file blocks, state chunks) come back
// on a second connection to the peer, and probes, heartbeats and proposals never wait for them.
enum class PeerLane { kControl, kBulk };

class PeerSender {
 public:
  using CallCallback = std::function<void(Result<wire::PeerMessage> response)>;

  virtual ~PeerSender() = default;

  // Sends a request to the Synod node at `ip`; `done` runs once, with the response or an error
  // (timeout, connection lost, not a Synod node).
  virtual void Call(Ipv4 ip, wire::PeerMessage request, std::chrono::milliseconds timeout,
                    CallCallback done, PeerLane lane) = 0;
  // One-way; may be lost.
  virtual void Send(Ipv4 ip, const wire::PeerMessage& message) = 0;
};

// Links to nodes by address, and who answers there: what the leader uses to check that a
// joiner is where it says. PeerService, or a simulation's stand-in. Loop thread only.
class PeerReach {
 public:
  virtual ~PeerReach() = default;
  // Connects to the node at `ip` unless a link there is followed already; returns whether it
  // started following it (then ForgetAddress() stops, once nobody needs the link).
  virtual bool Reach(Ipv4 ip) = 0;
  virtual void ForgetAddress(Ipv4 ip) = 0;
  // The Hello of the Synod node reached at `ip`, if any: who answers there now.
  virtual std::optional<wire::Hello> HelloAt(Ipv4 ip) const = 0;
};

}  // namespace synod

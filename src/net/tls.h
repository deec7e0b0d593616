// TLS 1.3 for the cluster's own traffic (peer protocol, Raft, file blocks): TlsConfig says who
// belongs to the cluster, TlsSession is one connection's protocol state.
//
// Who belongs is either
// - everyone holding the cluster key (`synod keygen`: 32 random bytes, base64): each side proves
//   it with a TLS 1.3 external PSK derived from the key (HKDF-SHA256), with an ephemeral
//   key exchange (psk_dhe_ke) so that a key stolen later does not open recorded traffic; or
// - everyone with a certificate signed by the given CA (mutual certificate authentication), for
//   users who have a PKI.
// Both sides authenticate; a peer without the key, with another key or another CA's certificate
// fails the handshake, and the session's error says which of these it was when that can be told.
//
// TlsSession is a pure state machine over memory buffers: bytes read from the network go in,
// plaintext and bytes to send come out; it does no I/O (TcpConnection::SecureWith drives it), so
// it is tested by pumping two sessions into each other.
//
// Thread-safety: a TlsConfig is immutable once built and may be shared by every connection of
// every thread. A TlsSession belongs to one connection, on one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "core/status.h"
#include "net/ipv4.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace synod {

class TlsSession;
struct TlsCallbacks;

class TlsConfig : public std::enable_shared_from_this<TlsConfig> {
 public:
  // `key_text` is the content of a cluster key file (surrounding whitespace is ignored).
  static Result<std::shared_ptr<const TlsConfig>> FromClusterKey(std::string_view key_text);
  // Reads a cluster key file; errors name the file, never its content.
  static Result<std::shared_ptr<const TlsConfig>> FromClusterKeyFile(const std::string& path);
  // PEM files: this node's certificate (chain), its private key, and the CA that signs members.
  static Result<std::shared_ptr<const TlsConfig>> FromCertificates(const std::string& cert_path,
                                                                   const std::string& key_path,
                                                                   const std::string& ca_path);
  // HTTPS for the API: PEM files of the certificate (chain) and private key this node serves to
  // any client, which it asks for none (API tokens say who may do what). TLS 1.2 and 1.3, for
  // browsers and curl alike. Server sessions only.
  static Result<std::shared_ptr<const TlsConfig>> ForHttpsServer(const std::string& cert_path,
                                                                 const std::string& key_path);
  // A new cluster key file's content: 32 random bytes in base64 and a newline.
  static Result<std::string> GenerateClusterKey();

  ~TlsConfig();
  TlsConfig(const TlsConfig&) = delete;
  TlsConfig& operator=(const TlsConfig&) = delete;

  // A session for one connection: the connecting side is the client.
  std::unique_ptr<TlsSession> NewSession(bool client) const;
  // "key 3f2a…" (a public fingerprint of the key, safe to log) or "certificates".
  const std::string& description() const { return description_; }

 private:
  friend class TlsSession;
  friend struct TlsCallbacks;
  TlsConfig() = default;

  SSL_CTX* client_ = nullptr;
  SSL_CTX* server_ = nullptr;
  std::string psk_;       // empty in certificate mode
  std::string identity_;  // the PSK identity both sides send: derived from the key, not secret
  std::string description_;
};

class TlsSession {
 public:
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // The client's first flight (empty for a server, which waits for the client).
  Status Begin(std::string& wire);
  // Takes bytes read from the network: appends the plaintext they complete to `plain` and what
  // must be sent back (handshake, alerts) to `wire`. An error is final: the handshake was
  // refused, or a record was forged or corrupt; its message says why.
  Status Receive(std::string_view bytes, std::string& plain, std::string& wire);
  // Encrypts `plain` into `wire`. Before the handshake is done the plaintext is held, and sent
  // by the Receive() that completes it.
  Status Send(std::string_view plain, std::string& wire);
  bool established() const { return established_; }
  // Plaintext held until the handshake is done.
  size_t held_bytes() const { return held_.size(); }

 private:
  friend class TlsConfig;
  TlsSession(std::shared_ptr<const TlsConfig> config, bool client);
  Status Fail(const std::string& what);
  void Drain(std::string& wire);
  Status Encrypt(std::string_view plain, std::string& wire);

  std::shared_ptr<const TlsConfig> config_;
  SSL* ssl_ = nullptr;
  bool client_;
  bool established_ = false;
  bool failed_ = false;
  std::string held_;              // plaintext sent before the handshake completed
  std::string refused_identity_;  // a server's: the PSK identity a client offered, not ours
  friend struct TlsCallbacks;
};

// Handshakes that failed: counted by port ("peer", "raft"), and logged once per source and reason,
// so that a node retrying every second with another key says so once, not every second.
// Loop thread only.
class TlsRefusals {
 public:
  void Note(const std::string& port, Ipv4 source, const std::string& reason);
  const std::map<std::string, uint64_t>& counts() const { return counts_; }

 private:
  static constexpr size_t kMaxRemembered = 4096;
  std::map<std::string, uint64_t> counts_;
  std::set<std::pair<uint32_t, std::string>> logged_;
};

}  // namespace synod

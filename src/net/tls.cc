#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "core/base64.h"

namespace synod {
namespace {

constexpr size_t kClusterKeyBytes = 32;
constexpr size_t kMaxKeyFileBytes = 4096;
constexpr char kIdentityPrefix[] = "synod1-";
// Both use SHA-256, the hash of the PSK session (a PSK is usable only with a suite of its hash).
constexpr char kPskSuites[] = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";
constexpr unsigned char kPskSuiteId[] = {0x13, 0x01};  // TLS_AES_128_GCM_SHA256

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

// HKDF-SHA256 of the cluster key: separate outputs for the PSK and for its public identity, so
// that the identity (sent in clear text, and logged) says nothing about the PSK.
Result<std::string> DeriveFromKey(std::string_view key, std::string_view label, size_t length) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr);
  std::string out(length, '\0');
  size_t out_length = length;
  static constexpr unsigned char kSalt[] = "synod cluster key";
  const bool ok =
      ctx != nullptr && EVP_PKEY_derive_init(ctx) > 0 &&
      EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
      EVP_PKEY_CTX_set1_hkdf_salt(ctx, kSalt, sizeof kSalt - 1) > 0 &&
      EVP_PKEY_CTX_set1_hkdf_key(ctx, reinterpret_cast<const unsigned char*>(key.data()),
                                 static_cast<int>(key.size())) > 0 &&
      EVP_PKEY_CTX_add1_hkdf_info(ctx, reinterpret_cast<const unsigned char*>(label.data()),
                                  static_cast<int>(label.size())) > 0 &&
      EVP_PKEY_derive(ctx, reinterpret_cast<unsigned char*>(out.data()), &out_length) > 0;
  EVP_PKEY_CTX_free(ctx);
  if (!ok || out_length != length) return Status::Error("cannot derive from the cluster key");
  return out;
}

std::string OpenSslReason() {
  const unsigned long error = ERR_peek_last_error();
  const char* reason = error != 0 ? ERR_reason_error_string(error) : nullptr;
  return reason != nullptr ? reason : "unknown error";
}

// Loads the certificate (chain) and its private key (PEM files) into `ctx`; errors name the file.
Status UseCertificate(SSL_CTX* ctx, const std::string& cert_path, const std::string& key_path) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_path.c_str()) != 1) {
    const std::string why = OpenSslReason();
    ERR_clear_error();
    return Status::Invalid("cannot use the certificate " + cert_path + ": " + why);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_path.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    const std::string why = OpenSslReason();
    ERR_clear_error();
    return Status::Invalid("cannot use the private key " + key_path + ": " + why);
  }
  return Status::Ok();
}

SSL_CTX* NewContext(bool client) {
  SSL_CTX* ctx = SSL_CTX_new(client ? TLS_client_method() : TLS_server_method());
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // Connections are long-lived: a resumption ticket would only cost a message.
  SSL_CTX_set_num_tickets(ctx, 0);
  return ctx;
}

// The external PSK as a session that both sides build alike.
SSL_SESSION* NewPskSession(SSL* ssl, const std::string& psk) {
  const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, kPskSuiteId);
  if (cipher == nullptr) return nullptr;
  SSL_SESSION* session = SSL_SESSION_new();
  if (session == nullptr) return nullptr;
  if (SSL_SESSION_set1_master_key(session, reinterpret_cast<const unsigned char*>(psk.data()),
                                  psk.size()) != 1 ||
      SSL_SESSION_set_cipher(session, cipher) != 1 ||
      SSL_SESSION_set_protocol_version(session, TLS1_3_VERSION) != 1) {
    SSL_SESSION_free(session);
    return nullptr;
  }
  return session;
}

// "key 3f2a9c01d2e4b5a6" for a PSK identity of ours; its start otherwise (printable only).
std::string DescribeIdentity(std::string_view identity) {
  if (identity.substr(0, sizeof kIdentityPrefix - 1) == kIdentityPrefix) {
    return "key " + std::string(identity.substr(sizeof kIdentityPrefix - 1, 16));
  }
  std::string shown;
  for (char c : identity.substr(0, 32))
    shown.push_back(std::isprint(static_cast<unsigned char>(c)) ? c : '?');
  return "identity \"" + shown + "\"";
}

}  // namespace

// OpenSSL's callbacks, with access to the session they run for.
struct TlsCallbacks {
  static TlsSession* Of(SSL* ssl) { return static_cast<TlsSession*>(SSL_get_app_data(ssl)); }

  static int UsePsk(SSL* ssl, const EVP_MD* md, const unsigned char** id, size_t* id_length,
                    SSL_SESSION** out) {
    const TlsConfig& config = *Of(ssl)->config_;
    SSL_SESSION* session = NewPskSession(ssl, config.psk_);
    if (session == nullptr) return 0;
    if (md != nullptr && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(session))) {
      // A retry after a HelloRetryRequest with a suite of another hash: no PSK for it.
      SSL_SESSION_free(session);
      *out = nullptr;
      *id = nullptr;
      *id_length = 0;
      return 1;
    }
    *id = reinterpret_cast<const unsigned char*>(config.identity_.data());
    *id_length = config.identity_.size();
    *out = session;
    return 1;
  }

  static int FindPsk(SSL* ssl, const unsigned char* id, size_t id_length, SSL_SESSION** out) {
    TlsSession* self = Of(ssl);
    const TlsConfig& config = *self->config_;
    const std::string_view offered(reinterpret_cast<const char*>(id), id_length);
    if (offered != config.identity_) {
      self->refused_identity_ = std::string(offered.substr(0, 64));
      *out = nullptr;  // no such PSK: the handshake fails, as there is no certificate either
      return 1;
    }
    *out = NewPskSession(ssl, config.psk_);
    return *out != nullptr ? 1 : 0;
  }
};

TlsConfig::~TlsConfig() {
  SSL_CTX_free(client_);
  SSL_CTX_free(server_);
  OPENSSL_cleanse(psk_.data(), psk_.size());
}

Result<std::shared_ptr<const TlsConfig>> TlsConfig::FromClusterKey(std::string_view key_text) {
  const size_t first = key_text.find_first_not_of(" \t\r\n");
  const size_t last = key_text.find_last_not_of(" \t\r\n");
  const std::string_view trimmed = first == std::string_view::npos
                                       ? std::string_view()
                                       : key_text.substr(first, last - first + 1);
  Result<std::string> key = Base64Decode(trimmed);
  if (!key.ok() || key.value().size() != kClusterKeyBytes) {
    return Status::Invalid("not a cluster key: expected " + std::to_string(kClusterKeyBytes) +
                           " bytes in base64, as `synod keygen` writes");
  }
  std::shared_ptr<TlsConfig> config(new TlsConfig);
  Result<std::string> psk = DeriveFromKey(key.value(), "synod tls 1.3 external psk v1", 32);
  Result<std::string> id = DeriveFromKey(key.value(), "synod tls 1.3 psk identity v1", 8);
  OPENSSL_cleanse(key.value().data(), key.value().size());
  if (!psk.ok()) return psk.status();
  if (!id.ok()) return id.status();
  config->psk_ = std::move(psk.value());
  config->identity_ = kIdentityPrefix + Hex(id.value());
  config->description_ = DescribeIdentity(config->identity_);
  config->client_ = NewContext(true);
  config->server_ = NewContext(false);
  if (config->client_ == nullptr || config->server_ == nullptr ||
      SSL_CTX_set_ciphersuites(config->client_, kPskSuites) != 1 ||
      SSL_CTX_set_ciphersuites(config->server_, kPskSuites) != 1) {
    return Status::Error("cannot set up TLS: " + OpenSslReason());
  }
  SSL_CTX_set_psk_use_session_callback(config->client_, &TlsCallbacks::UsePsk);
  SSL_CTX_set_psk_find_session_callback(config->server_, &TlsCallbacks::FindPsk);
  return std::shared_ptr<const TlsConfig>(std::move(config));
}

Result<std::shared_ptr<const TlsConfig>> TlsConfig::FromClusterKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Invalid("cannot read the cluster key file " + path);
  std::string text(kMaxKeyFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxKeyFileBytes) {
    return Status::Invalid("the cluster key file " + path + " is too large to be a cluster key");
  }
  Result<std::shared_ptr<const TlsConfig>> config = FromClusterKey(text);
  OPENSSL_cleanse(text.data(), text.size());
  if (!config.ok())
    return Status::Invalid("the cluster key file " + path + " is " + config.status().message());
  struct stat info {};
  if (stat(path.c_str(), &info) == 0 && (info.st_mode & 077) != 0) {
    spdlog::warn("the cluster key file {} can be read by other users: chmod 600 it", path);
  }
  return config;
}

Result<std::shared_ptr<const TlsConfig>> TlsConfig::FromCertificates(const std::string& cert_path,
                                                                     const std::string& key_path,
                                                                     const std::string& ca_path) {
  std::shared_ptr<TlsConfig> config(new TlsConfig);
  config->description_ = "certificates";
  config->client_ = NewContext(true);
  config->server_ = NewContext(false);
  for (SSL_CTX* ctx : {config->client_, config->server_}) {
    if (ctx == nullptr) return Status::Error("cannot set up TLS: " + OpenSslReason());
    if (Status used = UseCertificate(ctx, cert_path, key_path); !used.ok()) return used;
    if (SSL_CTX_load_verify_locations(ctx, ca_path.c_str(), nullptr) != 1) {
      const std::string why = OpenSslReason();
      ERR_clear_error();
      return Status::Invalid("cannot use the CA certificate " + ca_path + ": " + why);
    }
    // Any certificate the cluster's CA signed is a member: no host name check (nodes are found
    // by broadcast, not by name).
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return std::shared_ptr<const TlsConfig>(std::move(config));
}

Result<std::shared_ptr<const TlsConfig>> TlsConfig::ForHttpsServer(const std::string& cert_path,
                                                                   const std::string& key_path) {
  std::shared_ptr<TlsConfig> config(new TlsConfig);
  config->description_ = "https";
  config->server_ = SSL_CTX_new(TLS_server_method());
  SSL_CTX* ctx = config->server_;
  if (ctx == nullptr) return Status::Error("cannot set up TLS: " + OpenSslReason());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (Status used = UseCertificate(ctx, cert_path, key_path); !used.ok()) return used;
  return std::shared_ptr<const TlsConfig>(std::move(config));
}

Result<std::string> TlsConfig::GenerateClusterKey() {
  std::string key(kClusterKeyBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1) {
    return Status::Error("cannot generate a key: the system has no randomness to give");
  }
  std::string text = Base64Encode(key) + "\n";
  OPENSSL_cleanse(key.data(), key.size());
  return text;
}

std::unique_ptr<TlsSession> TlsConfig::NewSession(bool client) const {
  return std::unique_ptr<TlsSession>(new TlsSession(shared_from_this(), client));
}

TlsSession::TlsSession(std::shared_ptr<const TlsConfig> config, bool client)
    : config_(std::move(config)), client_(client) {
  ssl_ = SSL_new(client_ ? config_->client_ : config_->server_);
  if (ssl_ == nullptr) {
    failed_ = true;
    return;
  }
  SSL_set_app_data(ssl_, this);
  // The session owns both memory buffers through ssl_.
  SSL_set_bio(ssl_, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  if (client_) {
    SSL_set_connect_state(ssl_);
  } else {
    SSL_set_accept_state(ssl_);
  }
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

Status TlsSession::Fail(const std::string& what) {
  failed_ = true;
  ERR_clear_error();
  return Status::Unavailable(what);
}

void TlsSession::Drain(std::string& wire) {
  BIO* out = SSL_get_wbio(ssl_);
  const size_t pending = BIO_ctrl_pending(out);
  if (pending == 0) return;
  const size_t start = wire.size();
  wire.resize(start + pending);
  const int read = BIO_read(out, wire.data() + start, static_cast<int>(pending));
  wire.resize(start + static_cast<size_t>(std::max(read, 0)));
}

Status TlsSession::Begin(std::string& wire) {
  if (failed_) return Fail("cannot set up TLS: " + OpenSslReason());
  if (!client_) return Status::Ok();
  const int rc = SSL_do_handshake(ssl_);
  if (rc != 1 && SSL_get_error(ssl_, rc) != SSL_ERROR_WANT_READ) {
    return Fail("cannot start the TLS handshake: " + OpenSslReason());
  }
  Drain(wire);
  return Status::Ok();
}

Status TlsSession::Encrypt(std::string_view plain, std::string& wire) {
  while (!plain.empty()) {
    const int chunk = static_cast<int>(std::min<size_t>(plain.size(), 1 << 30));
    const int written = SSL_write(ssl_, plain.data(), chunk);
    if (written <= 0) return Fail("cannot encrypt: " + OpenSslReason());
    plain.remove_prefix(static_cast<size_t>(written));
  }
  Drain(wire);
  return Status::Ok();
}

Status TlsSession::Receive(std::string_view bytes, std::string& plain, std::string& wire) {
  if (failed_) return Status::Unavailable("the TLS session has already failed");
  if (!established_ && !client_ && !bytes.empty() && BIO_ctrl_pending(SSL_get_rbio(ssl_)) == 0 &&
      SSL_in_before(ssl_) && static_cast<unsigned char>(bytes[0]) != 0x16) {
    // Not a TLS handshake record: a peer that has no cluster key speaks the protocol in clear.
    return Fail("the peer does not use TLS (it has no cluster key)");
  }
  if (BIO_write(SSL_get_rbio(ssl_), bytes.data(), static_cast<int>(bytes.size())) !=
      static_cast<int>(bytes.size())) {
    return Fail("out of memory for TLS input");
  }
  if (!established_) {
    const int rc = SSL_do_handshake(ssl_);
    if (rc != 1) {
      const int error = SSL_get_error(ssl_, rc);
      Drain(wire);  // an alert tells the peer why
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return Status::Ok();
      if (!refused_identity_.empty()) {
        return Fail("the peer has another cluster key (" + DescribeIdentity(refused_identity_) +
                    "; ours is " + config_->description() + ")");
      }
      if (const long verify = SSL_get_verify_result(ssl_); verify != X509_V_OK) {
        return Fail(std::string("the peer's certificate is refused: ") +
                    X509_verify_cert_error_string(verify));
      }
      if (client_ && !config_->psk_.empty()) {
        return Fail("the peer refused the TLS handshake (another cluster key?): " +
                    OpenSslReason());
      }
      return Fail("TLS handshake failed: " + OpenSslReason());
    }
    established_ = true;
    if (!held_.empty()) {
      Drain(wire);
      std::string held = std::move(held_);
      held_.clear();
      if (Status sent = Encrypt(held, wire); !sent.ok()) return sent;
    }
  }
  char buffer[16 * 1024];
  for (;;) {
    const int read = SSL_read(ssl_, buffer, sizeof buffer);
    if (read > 0) {
      plain.append(buffer, static_cast<size_t>(read));
      continue;
    }
    const int error = SSL_get_error(ssl_, read);
    if (error == SSL_ERROR_WANT_READ) break;
    Drain(wire);
    if (error == SSL_ERROR_ZERO_RETURN) return Fail("the peer ended the TLS session");
    return Fail("a TLS record was refused: " + OpenSslReason());
  }
  Drain(wire);
  return Status::Ok();
}

Status TlsSession::Send(std::string_view plain, std::string& wire) {
  if (failed_) return Status::Unavailable("the TLS session has failed");
  if (!established_) {
    held_.append(plain);
    return Status::Ok();
  }
  return Encrypt(plain, wire);
}

void TlsRefusals::Note(const std::string& port, Ipv4 source, const std::string& reason) {
  ++counts_[port];
  if (logged_.size() >= kMaxRemembered) logged_.clear();
  // The details in parentheses (an identity the peer chose) do not make a new line.
  if (logged_.emplace(source.host_order, reason.substr(0, reason.find(" ("))).second) {
    spdlog::warn("{} connection with {} refused: {}", port, source.ToString(), reason);
  }
}

}  // namespace synod

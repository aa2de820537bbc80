// net/tls/tls_context: the TLS configuration of one security level (docs/design.md §6).
//
// A TlsContext is built once from --security, --tls-cert, --tls-key and --tls-ca (and the
// node id) and is then immutable: it holds our certificate chain and key, the CAs we trust,
// and one mbedTLS configuration per role (client, server) with the rules every lockmesh TLS
// link follows:
//   * TLS 1.2 only (mbedTLS 2.28 has no production TLS 1.3), ECDHE key exchange and AEAD
//     cipher suites only (AES-GCM, ChaCha20-Poly1305); no renegotiation, no session tickets.
//   * Both sides present a certificate and both verify the other's: the server requires the
//     client's certificate (MBEDTLS_SSL_VERIFY_REQUIRED on both roles).
//   * encrypt / mutual: the peer's chain must lead to a CA of --tls-ca, be within its
//     validity period, and its leaf must not be self-signed (a self-signed leaf is refused
//     even if the same certificate was put into --tls-ca: those modes mean "issued by the
//     CA"; self-signed certificates are what tofu is for).
//     mutual also requires our own certificate's CN to equal our node id, and every
//     certificate (ours: Create refuses it; a peer's leaf: the handshake does) to have
//     exactly one CN; the peer's CN is compared with the id it claims by the peer transport,
//     after its Hello (net/peer/peer_transport.h), using PeerCommonName.
//   * tofu: a self-signed leaf (its signature checks with its own key) within its validity
//     period is accepted by the handshake; whether its fingerprint is the one known for the
//     node is decided by the peer transport after the Hello (net/tls/known_peers.h).
// SecurityLevel::kNone builds no context (plain TCP); Create refuses it.
//
// Sessions (net/tls/tls_session.h) hold a std::shared_ptr to the context they started with, so
// a reload (a new context from the same files) never pulls the configuration from under a
// live session. Threading: Create may run on any thread; a built context is read-only and may
// be shared by sessions on any threads.
#ifndef LOCKMESH_NET_TLS_TLS_CONTEXT_H_
#define LOCKMESH_NET_TLS_TLS_CONTEXT_H_

#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mesh/status.h"
#include "net/tls/certificate.h"

namespace mesh::net {

/// --security: who may join (docs/design.md §6).
enum class SecurityLevel {
  kNone,     // clear TCP
  kEncrypt,  // TLS; peers' certificates chain to --tls-ca
  kMutual,   // as kEncrypt, and each certificate's CN is its node's id
  kTofu,     // TLS with self-signed certificates pinned on first contact (known_peers)
};

/// "none", "encrypt", "mutual", "tofu".
const char* SecurityLevelName(SecurityLevel level);

/// Parses one of the names above. InvalidArgument naming the text and the valid names.
Status ParseSecurityLevel(std::string_view text, SecurityLevel* level);

/// Which side of the TLS handshake a session plays (the dialler is the client).
enum class TlsRole { kClient, kServer };

/// Where a context's certificates come from.
struct TlsOptions {
  SecurityLevel level = SecurityLevel::kNone;
  /// PEM (or DER) file: our certificate first, then any intermediates (--tls-cert).
  std::string cert_file;
  /// Our unencrypted private key (--tls-key); must belong to the certificate.
  std::string key_file;
  /// The CAs whose certificates we accept (--tls-ca). Required by encrypt and mutual; tofu
  /// ignores it.
  std::string ca_file;
  /// Our node id. With kMutual, Create refuses a certificate whose CN differs from it.
  std::string node_id;
  /// tls-debug and tests only: let a client context have no certificate, to show what a
  /// server says to such a client. A node never sets it.
  bool allow_no_certificate = false;
};

/// An immutable TLS configuration; see the file comment.
class TlsContext {
 public:
  /// Loads the files of `options` and builds both role configurations. Errors, in words:
  /// level none; a missing or unreadable file (names the flag and the path); a key that does
  /// not belong to the certificate; no --tls-ca in encrypt/mutual; in mutual, "our
  /// certificate's CN is 'X' but this node's id is 'Y'" with the command that makes a right
  /// one. InitTlsRandom failures are returned as they are.
  static Status Create(const TlsOptions& options, std::shared_ptr<const TlsContext>* out);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SecurityLevel level() const { return options_.level; }
  const TlsOptions& options() const { return options_; }
  /// Our chain as loaded from cert_file (empty only with allow_no_certificate).
  const CertificateChain& own_chain() const { return own_chain_; }
  /// SHA-256 of our leaf certificate (all zeros without one).
  const Fingerprint& own_fingerprint() const { return own_fingerprint_; }
  /// The CAs of ca_file (empty in tofu).
  const CertificateChain& trusted_cas() const { return cas_; }

  /// The mbedTLS configuration for `role`, for mbedtls_ssl_setup (net/tls/tls_session.cc).
  const mbedtls_ssl_config* config(TlsRole role) const {
    return role == TlsRole::kClient ? &client_config_ : &server_config_;
  }

  /// Checks a peer's chain (leaf first, as received) with this context's rules, exactly as
  /// the handshake does (CA chain, validity, self-signed rule of the level). Returns OK, or
  /// PermissionDenied whose message says in words what is wrong ("certificate CN=x, O=y
  /// expired on 2026-01-01 00:00:00 UTC"). Used by the peer transport on reload to re-check
  /// peers that are already connected. Does not check CN or fingerprints (see the file
  /// comment).
  Status VerifyChain(const mbedtls_x509_crt& chain) const;

  /// The handshake's per-certificate check (mbedtls_ssl_set_verify callback body): may add
  /// flags (self-signed leaf in encrypt/mutual) or clear them (self-signed leaf in tofu).
  /// Appends a sentence to `*reason` for every problem left. `depth` 0 is the leaf.
  /// mutual also refuses a leaf with more or fewer than one CN (the CN is the node id), and
  /// a not-yet-valid certificate gets MBEDTLS_X509_BADCERT_EXPIRED added to its FUTURE flag,
  /// so that mbedTLS sends certificate_expired ("expired or not currently valid", RFC 5246
  /// §7.2.2) rather than certificate_unknown; `*reason` still says "not valid before".
  void CheckCertificate(const mbedtls_x509_crt& crt, int depth, uint32_t* flags,
                        std::string* reason) const;

  /// What an operator must hear about the certificates this context presents (own chain) and
  /// trusts (--tls-ca) at `now` (Unix seconds; no clock is read): one sentence per
  /// certificate that CertificateExpiryWarning flags (expired, not yet valid, or ending within
  /// kCertificateWarningDays), and one if our leaf's keyUsage or extendedKeyUsage forbids a
  /// role a node plays (TLS client or server). Empty when all is well. The node logs them at
  /// start-up and on reload, and `lockmesh status` lists them (net/peer/peer_transport.h).
  std::vector<std::string> CertificateWarnings(int64_t now) const;

 private:
  explicit TlsContext(const TlsOptions& options);
  Status Build();
  Status BuildConfig(TlsRole role, mbedtls_ssl_config* conf);

  TlsOptions options_;
  CertificateChain own_chain_;
  PrivateKey own_key_;
  Fingerprint own_fingerprint_;
  CertificateChain cas_;
  mbedtls_ssl_config client_config_;
  mbedtls_ssl_config server_config_;
};

/// The subject CN of `crt` (the last CN attribute), or "" if it has none. Under mutual the
/// handshake has already refused a leaf with several CNs (CheckCertificate).
std::string PeerCommonName(const mbedtls_x509_crt& crt);

/// How many CN attributes the subject of `crt` has.
size_t CommonNameCount(const mbedtls_x509_crt& crt);

/// Why the keyUsage / extendedKeyUsage of `crt` forbids a TLS endpoint of `role` to use it
/// (the checks mbedTLS makes in the handshake: digitalSignature for an ECDHE suite,
/// serverAuth or clientAuth), in words naming what is missing; "" if it may. An absent
/// extension allows every use.
std::string DescribeUsageProblem(const mbedtls_x509_crt& crt, TlsRole role);

/// Words for X.509 verification flags (MBEDTLS_X509_BADCERT_*), e.g. "not signed by a
/// trusted CA (--tls-ca)", "expired on <date>" (dates from `crt`), joined by "; ".
std::string DescribeVerifyFlags(uint32_t flags, const mbedtls_x509_crt& crt);

}  // namespace mesh::net

#endif  // LOCKMESH_NET_TLS_TLS_CONTEXT_H_

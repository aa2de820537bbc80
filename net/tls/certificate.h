// net/tls/certificate: X.509 certificates and keys for lockmesh's secure modes (docs/design.md §6).
//
// - Loading: a PEM (or DER) certificate chain and a private key, as mbedTLS objects owned by
//   small RAII wrappers (CertificateChain, PrivateKey) that the TLS configuration borrows.
// - Inspecting: subject, issuer, CN, SAN DNS names, validity, CA flag, self-signed, and the
//   SHA-256 fingerprint of the DER encoding (the value `openssl x509 -fingerprint -sha256`
//   prints and the value tofu mode pins).
// - Fingerprints: printed as OpenSSL 3 prints them (`sha256 Fingerprint=AB:CD:...`, byte for
//   byte the output of `openssl x509 -noout -fingerprint -sha256`) and compactly
//   (`sha256$abcd...`); either form parses back.
// - Generating (mbedTLS 2.28 x509write, EC P-256 keys, ECDSA-SHA256 signatures): a CA, a
//   node certificate signed by a CA whose CN (and SAN dNSName) is the node's unique id, and a
//   self-signed certificate; validity is the caller's, so tests can make expired and
//   not-yet-valid certificates.
// - Writing: DIR/cert.pem (0644) and DIR/key.pem (0600; created 0600 with O_EXCL, so it is
//   never readable by others even for an instant), DIR created 0700 if missing.
//
// Randomness comes from net/tls/tls_random.h (the one DRBG). Every function is thread-safe unless
// it says otherwise; the wrapper objects are thread-compatible (one thread at a time, or
// read-only sharing once built, which is what mbedTLS's ssl_config needs).
#ifndef LOCKMESH_NET_TLS_CERTIFICATE_H_
#define LOCKMESH_NET_TLS_CERTIFICATE_H_

#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mesh/status.h"

namespace mesh::net {

/// File names inside a certificate directory written by `lockmesh cert` (docs/design.md §7).
inline constexpr const char kCertificateFileName[] = "cert.pem";
inline constexpr const char kPrivateKeyFileName[] = "key.pem";

// ------------------------------------------------------------------------------ fingerprints

/// The SHA-256 digest of a certificate's DER encoding. A value type; always holds 32 bytes
/// (a default-constructed one is all zeros and matches no real certificate).
class Fingerprint {
 public:
  Fingerprint() = default;
  explicit Fingerprint(const std::array<uint8_t, 32>& bytes) : bytes_(bytes) {}

  /// The fingerprint of `der[0..len)` (the certificate's raw DER, e.g. mbedtls_x509_crt::raw).
  static Fingerprint OfDer(const unsigned char* der, size_t len);

  /// Parses any of these (case-insensitive, surrounding whitespace ignored):
  ///   `sha256 Fingerprint=AB:CD:...` / `SHA256 Fingerprint=AB:CD:...` (OpenSSL 3 / 1.1),
  ///   `sha256$abcd...` (compact), `AB:CD:...` (colon-separated), or 64 bare hex digits.
  /// Returns InvalidArgument naming the text and what is wrong (length, a non-hex digit, a
  /// digest other than SHA-256).
  static Status Parse(std::string_view text, Fingerprint* out);

  /// `sha256 Fingerprint=AB:CD:...:EF`: exactly what `openssl x509 -noout -fingerprint
  /// -sha256` prints with OpenSSL 3 (Debian 12). Uppercase hex, no newline.
  std::string ToOpenSsl() const;

  /// `sha256$abcd...ef`: 64 lowercase hex digits after the prefix. The form stored in
  /// known_peers and shown in logs. Note the `$`: quote it in a shell (see ShellQuote).
  std::string ToCompact() const;

  /// `AB:CD:...:EF` (the OpenSSL form without its prefix).
  std::string ToColonHex() const;

  const std::array<uint8_t, 32>& bytes() const { return bytes_; }
  bool operator==(const Fingerprint& other) const { return bytes_ == other.bytes_; }
  bool operator!=(const Fingerprint& other) const { return bytes_ != other.bytes_; }
  bool operator<(const Fingerprint& other) const { return bytes_ < other.bytes_; }

 private:
  std::array<uint8_t, 32> bytes_{};
};

// ------------------------------------------------------------------------------ inspection

/// Where a certificate's validity period stands at a given time.
enum class Validity { kValid, kExpired, kNotYetValid };

/// "valid", "expired", "not yet valid".
const char* ValidityName(Validity validity);

/// What lockmesh shows and checks about one certificate. Plain data.
struct CertificateInfo {
  std::string subject;      // distinguished name as mbedTLS prints it, e.g. "CN=abc, O=lockmesh"
  std::string issuer;       // likewise
  std::string common_name;  // the subject's (last) CN; empty if it has none
  std::vector<std::string> common_names;  // every CN of the subject, in order (mutual wants one)
  std::vector<std::string> dns_names;     // SAN dNSName entries, in order
  int64_t not_before = 0;                 // Unix seconds, UTC
  int64_t not_after = 0;                  // Unix seconds, UTC
  bool is_ca = false;                     // basicConstraints CA:TRUE
  bool self_signed = false;  // issuer DN == subject DN and the signature verifies with its own key
  std::string serial;        // serial number, colon-separated hex as mbedTLS prints it
  std::string key_type;      // e.g. "EC P-256", "RSA 2048"
  std::string signature;     // e.g. "ECDSA with SHA256"
  Fingerprint fingerprint;   // SHA-256 of the DER

  /// Where `now` (Unix seconds) falls in [not_before, not_after] (both ends valid).
  Validity ValidityAt(int64_t now) const;
};

/// Days before its end from which a node warns about its own certificate (start-up log and
/// `lockmesh status`).
inline constexpr int kCertificateWarningDays = 30;

/// Where a node's own certificate stands for its operator at one instant.
struct CertificateExpiry {
  enum class State {
    kFine,         // valid now and for more than the warning period
    kExpiresSoon,  // valid now, but ends within the warning period
    kExpired,      // its end has passed: peers refuse it
    kNotYetValid,  // its start lies ahead: peers refuse it until then
  };
  State state = State::kFine;
  /// kExpiresSoon: whole days left (0: less than a day); kExpired: whole days since the end;
  /// kNotYetValid: whole days until the start; kFine: whole days left.
  int64_t days = 0;
};

/// The expiry decision, pure (no clock is read: `now` is the caller's, Unix seconds): a
/// certificate valid over [not_before, not_after] (both ends valid, as ValidityAt) is
/// kExpiresSoon when now lies within the last `warning_days` days of it (not_after - now <=
/// warning_days days), kExpired after not_after, kNotYetValid before not_before.
CertificateExpiry CheckCertificateExpiry(int64_t not_before, int64_t not_after, int64_t now,
                                         int warning_days = kCertificateWarningDays);

/// The warning a node logs at start-up and shows in `lockmesh status` for one certificate it
/// presents or trusts, or "" when CheckCertificateExpiry says kFine. `what` names it ("our
/// certificate (--tls-cert /etc/lockmesh/cert.pem)"). Pure, like CheckCertificateExpiry.
/// E.g. "our certificate CN=n1, O=lockmesh (--tls-cert F) expires in 12 days, on 2026-12-19
/// 10:00:00 UTC: peers refuse it from then on; make a new one (`lockmesh cert node`) and
/// send the node SIGHUP".
std::string CertificateExpiryWarning(const CertificateInfo& info, const std::string& what,
                                     int64_t now, int warning_days = kCertificateWarningDays);

/// Describes `crt` (only the first certificate of the chain; the `next` links are ignored).
/// Never fails on a certificate mbedTLS has parsed. Usable on the peer certificate inside a
/// verify callback or after a handshake (mbedtls_ssl_get_peer_cert).
CertificateInfo InspectCertificate(const mbedtls_x509_crt& crt);

/// "2026-11-23 17:40:00 UTC" for Unix seconds `t`.
std::string FormatUtc(int64_t t);

// ------------------------------------------------------------------------------ loading

/// An owned mbedtls_x509_crt chain (leaf first, then intermediates, as in the PEM file).
/// Move-only; get() stays valid for the life of the chain, across moves. mbedTLS
/// configurations that borrow it (mbedtls_ssl_conf_own_cert, mbedtls_ssl_conf_ca_chain) must
/// not outlive it.
class CertificateChain {
 public:
  CertificateChain();
  ~CertificateChain();
  CertificateChain(CertificateChain&& other) noexcept;
  CertificateChain& operator=(CertificateChain&& other) noexcept;
  CertificateChain(const CertificateChain&) = delete;
  CertificateChain& operator=(const CertificateChain&) = delete;

  /// Reads every certificate in `path` (PEM with one or more CERTIFICATE blocks, or one DER
  /// certificate; at most 1 MiB). NotFound if the file is missing; IOError if it cannot be
  /// read; InvalidArgument naming the file and the mbedTLS reason if it holds no parseable
  /// certificate (a key given as --tls-cert says "it holds a private key") or if any of its
  /// certificates does not parse.
  static Status Load(const std::string& path, CertificateChain* out);

  /// As Load, from memory. `origin` names the data in error messages.
  static Status Parse(std::string_view pem_or_der, const std::string& origin,
                      CertificateChain* out);

  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  mbedtls_x509_crt* get() { return crt_.get(); }
  const mbedtls_x509_crt* get() const { return crt_.get(); }
  /// The leaf (first) certificate. Requires !empty().
  const mbedtls_x509_crt& leaf() const { return *crt_; }

  /// InspectCertificate of each certificate, leaf first.
  std::vector<CertificateInfo> Inspect() const;

 private:
  struct Free {
    void operator()(mbedtls_x509_crt* crt) const;
  };
  // Heap-allocated so that get() survives a move (an ssl_config may already point at it).
  std::unique_ptr<mbedtls_x509_crt, Free> crt_;
  size_t count_ = 0;
};

/// An owned mbedtls_pk_context holding a private key. Move-only, like CertificateChain.
class PrivateKey {
 public:
  PrivateKey();
  ~PrivateKey();
  PrivateKey(PrivateKey&& other) noexcept;
  PrivateKey& operator=(PrivateKey&& other) noexcept;
  PrivateKey(const PrivateKey&) = delete;
  PrivateKey& operator=(const PrivateKey&) = delete;

  /// Reads an unencrypted PEM or DER private key (SEC1 "EC PRIVATE KEY", PKCS#8
  /// "PRIVATE KEY", or PKCS#1 "RSA PRIVATE KEY"). NotFound if missing; IOError if it cannot
  /// be read; InvalidArgument naming the file for anything else (a passphrase-protected key
  /// says so). Does not check the file's mode.
  static Status Load(const std::string& path, PrivateKey* out);

  /// As Load, from memory.
  static Status Parse(std::string_view pem_or_der, const std::string& origin, PrivateKey* out);

  bool empty() const { return !loaded_; }
  mbedtls_pk_context* get() { return pk_.get(); }
  const mbedtls_pk_context* get() const { return pk_.get(); }

 private:
  struct Free {
    void operator()(mbedtls_pk_context* pk) const;
  };
  std::unique_ptr<mbedtls_pk_context, Free> pk_;
  bool loaded_ = false;
};

/// OK if `key` is the private half of `cert`'s leaf public key; InvalidArgument ("the private
/// key does not belong to the certificate (CN=...)") otherwise.
Status CheckKeyMatchesCertificate(const CertificateChain& cert, const PrivateKey& key);

// ------------------------------------------------------------------------------ generation

/// What kind of certificate to generate.
enum class CertificateKind {
  kCa,          // basicConstraints CA:TRUE pathlen 0, keyUsage keyCertSign|cRLSign, self-signed
  kNode,        // CA:FALSE, keyUsage digitalSignature, signed by a CA
  kSelfSigned,  // CA:FALSE, keyUsage digitalSignature, signed by its own key
};
// kNode and kSelfSigned also carry SAN dNSName = CN when the CN is made only of
// [A-Za-z0-9._-] (every unique id is); kCa carries no SAN. All get subject and authority key
// identifiers, version 3, serial = 127 random bits.

/// extendedKeyUsage purposes a generated certificate may carry (CertificateSpec).
enum ExtendedKeyUsage : unsigned {
  kEkuServerAuth = 1u << 0,  // id-kp-serverAuth: may act as a TLS server
  kEkuClientAuth = 1u << 1,  // id-kp-clientAuth: may act as a TLS client
};

/// A request for a new certificate (a fresh EC P-256 key is always generated).
struct CertificateSpec {
  CertificateKind kind = CertificateKind::kSelfSigned;
  /// Subject CN: 1..128 printable ASCII characters without '\' (a node's unique id for kNode).
  /// The subject is "CN=<common_name>, O=lockmesh".
  std::string common_name;
  /// Validity, Unix seconds UTC; not_before < not_after, both within years 1950..9999.
  /// Either may lie in the past or the future (tests make expired / not-yet-valid ones).
  int64_t not_before = 0;
  int64_t not_after = 0;
  /// keyUsage bits (MBEDTLS_X509_KU_*); 0 keeps the kind's (see CertificateKind). Tests make
  /// certificates that TLS may not use with it; `lockmesh cert` never sets it.
  unsigned key_usage = 0;
  /// extendedKeyUsage (ExtendedKeyUsage bits); 0 writes no such extension (any purpose), as
  /// `lockmesh cert` does. Tests only, like key_usage.
  unsigned extended_key_usage = 0;
  /// Further CNs after common_name in the subject ("CN=a, O=lockmesh, CN=b"); same rules as
  /// common_name. Tests only (--security mutual refuses such certificates).
  std::vector<std::string> extra_common_names;
};

/// A freshly generated certificate and its key, PEM-encoded ("CERTIFICATE" and SEC1
/// "EC PRIVATE KEY" blocks). Treat key_pem as a secret.
struct PemPair {
  std::string cert_pem;
  std::string key_pem;
};

/// The validity most callers want: from one hour ago (clock skew between hosts) to `days`
/// days from `now`. Both in Unix seconds.
void DefaultValidity(int64_t now, int days, CertificateSpec* spec);

/// Generates a certificate per `spec`. For kNode, `issuer_cert`/`issuer_key` are the CA
/// (its leaf must be a CA whose key matches, else InvalidArgument); the new certificate's
/// issuer DN is copied byte for byte from the CA's subject so that any verifier chains it.
/// For kCa and kSelfSigned both must be null. InvalidArgument for a bad spec; Internal for an
/// mbedTLS failure (with its message).
Status GenerateCertificate(const CertificateSpec& spec, const CertificateChain* issuer_cert,
                           const PrivateKey* issuer_key, PemPair* out);

// ------------------------------------------------------------------------------ files

/// Writes `pair` as DIR/cert.pem (mode 0644) and DIR/key.pem (mode 0600), creating DIR (and
/// missing parents) with mode 0700. The key is created with O_CREAT|O_EXCL and mode 0600
/// under a umask that removes group/other bits, so no other user can ever open it; each file
/// is written to a temporary name, fsynced and renamed into place, then DIR is fsynced.
/// Unless `overwrite`, refuses (AlreadyExists, naming the file and suggesting --force) when
/// either file exists, before writing anything.
Status WriteCertificateFiles(const std::string& dir, const PemPair& pair, bool overwrite);

/// Loads DIR/cert.pem and DIR/key.pem as a CA for GenerateCertificate(kNode): checks that the
/// leaf is a CA certificate and that the key matches it, with errors naming the files.
Status LoadCertificateAuthority(const std::string& dir, CertificateChain* cert, PrivateKey* key);

/// Quotes `word` for a POSIX shell when needed (`sha256$ab..` -> `'sha256$ab..'`); words of
/// only [A-Za-z0-9_./:=@%+,-] are returned unchanged.
std::string ShellQuote(std::string_view word);

}  // namespace mesh::net

#endif  // LOCKMESH_NET_TLS_CERTIFICATE_H_

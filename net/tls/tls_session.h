// net/tls/tls_session: one TLS session over in-memory buffers.
//
// The session never touches a socket: the owner feeds it the bytes that arrived (Feed),
// drives it (Handshake, Read, Write), and sends whatever ciphertext it produced (TakeOutput).
// So TLS never blocks the libuv loop and the same session works under the peer transport,
// tls-debug, tests (two sessions wired back to back) and the fuzzers.
//
// Typical use by a stream owner:
//   on connect:   session.Handshake()               -> write TakeOutput()
//   on read(b):   session.Feed(b);
//                 if (!handshake_done()) st = Handshake(); (write TakeOutput(); on error close)
//                 if (handshake_done())  st = Read(&plain); (on error close)
//   to send p:    session.Write(p)                  -> write TakeOutput()
//   to close:     session.Close()                   -> write TakeOutput(), then close
//
// Errors are Status values whose message says in words what happened and, where it can,
// what to do: our refusal of the peer's certificate (with the reason, e.g. "expired on ...",
// "not valid before ...", "its extendedKeyUsage lacks clientAuth", "has 2 CNs"), the peer's
// refusal of ours (from its TLS alert: "the peer does not trust the CA that issued our
// certificate", with what our own certificate says about it: "our certificate ... expired
// on ..."), a peer that does not speak TLS ("is it running with --security none?"), no
// common version or suite. After an error the session is dead; the output may
// still hold a fatal alert for the peer, which the owner should write before closing.
//
// Threading: a session is used by one thread at a time (the loop's). The context may be
// shared (net/tls/tls_context.h).
#ifndef LOCKMESH_NET_TLS_TLS_SESSION_H_
#define LOCKMESH_NET_TLS_TLS_SESSION_H_

#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <memory>
#include <string>
#include <string_view>

#include "mesh/status.h"
#include "net/tls/tls_context.h"

namespace mesh::net {

/// True if `first_bytes` (at least 3 bytes received on a connection, fewer is "no") start
/// like a TLS handshake record (type 22, version 3.x). A plaintext node uses it to say
/// "the peer speaks TLS" instead of "oversized frame".
bool LooksLikeTlsHandshake(std::string_view first_bytes);

class TlsSession {
 public:
  /// A session of `role` using `context` (kept alive by the session). Call Init next.
  TlsSession(std::shared_ptr<const TlsContext> context, TlsRole role);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  /// Sets the session up (mbedtls_ssl_setup). Internal on an mbedTLS failure (memory).
  Status Init();

  /// Appends ciphertext received from the peer. Never fails; the bytes are consumed by the
  /// next Handshake or Read.
  void Feed(std::string_view ciphertext);

  /// Advances the handshake as far as the input allows. OK while it needs more input (check
  /// handshake_done()) and once it is done; an error when it failed (see the file comment).
  /// A client's first call produces the ClientHello. Calling it after the handshake is done
  /// is a no-op.
  Status Handshake();
  bool handshake_done() const { return handshake_done_; }

  /// Encrypts `plaintext` into records (at most 16 KiB each) appended to the output. Only
  /// after the handshake. Large writes are cheap per byte: callers should coalesce many
  /// small messages into one Write.
  Status Write(std::string_view plaintext);

  /// Decrypts every whole record fed so far and appends the plaintext to `*plaintext`.
  /// Unavailable "the peer closed the TLS session" on a close_notify; other errors for a bad
  /// record or a fatal alert. Only after the handshake.
  Status Read(std::string* plaintext);

  /// Queues a close_notify alert (a clean end of the session). Idempotent.
  void Close();

  /// Moves the pending ciphertext (handshake messages, records, alerts) to `*out`
  /// (replacing its contents) for the owner to write to the network.
  void TakeOutput(std::string* out);
  bool has_output() const { return !output_.empty(); }
  /// Bytes fed but not yet consumed by mbedTLS.
  size_t buffered_input() const { return input_.size() - input_offset_; }

  TlsRole role() const { return role_; }
  const TlsContext& context() const { return *context_; }
  /// The context this session was made with, e.g. to compare with a reloaded one.
  const std::shared_ptr<const TlsContext>& context_ptr() const { return context_; }

  // ---- after the handshake (valid until the session is destroyed)

  /// "TLSv1.2".
  std::string version() const;
  /// The negotiated suite as mbedTLS names it, e.g. "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256".
  std::string cipher_suite() const;
  /// The peer's chain, leaf first (follow `next`), or null if it presented none. Owned by
  /// the session. Null when our check refused it (mbedTLS 2.28 frees a refused chain; the
  /// error's words name the certificate).
  const mbedtls_x509_crt* peer_certificate() const;
  /// SHA-256 of the peer's leaf (all zeros if none).
  Fingerprint peer_fingerprint() const;
  /// What our verification said about the peer's chain, in words ("" if it passed).
  const std::string& verify_detail() const { return verify_detail_; }
  /// True if the session failed because the peer sent a fatal alert (the peer refused us),
  /// false if we failed it (we refused the peer, or its bytes were not TLS).
  bool peer_refused() const { return peer_refused_; }

 private:
  static int SendCallback(void* self, const unsigned char* buf, size_t len);
  static int RecvCallback(void* self, unsigned char* buf, size_t len);
  static int VerifyCallback(void* self, mbedtls_x509_crt* crt, int depth, uint32_t* flags);
  // Turns an mbedTLS error of the handshake or of a record into words.
  Status Explain(int rc, const char* during);
  // Words for the verify flags of the peer's chain that the verify callback did not see
  // (mbedTLS adds keyUsage / extendedKeyUsage ones after it), "" if none.
  std::string LateVerifyWords() const;
  // What our own certificate says about the peer's fatal `alert` (read with this host's
  // clock: e.g. "; our certificate CN=a expired on ..."), "" if it says nothing.
  std::string OwnCertificateWords(unsigned char alert) const;

  std::shared_ptr<const TlsContext> context_;
  TlsRole role_;
  mbedtls_ssl_context ssl_;
  bool initialized_ = false;
  bool handshake_done_ = false;
  bool failed_ = false;
  bool closed_ = false;
  bool saw_input_ = false;
  bool first_byte_bad_ = false;
  bool peer_refused_ = false;
  std::string input_;
  size_t input_offset_ = 0;
  std::string output_;
  std::string verify_detail_;
  uint32_t described_flags_ = 0;  // flags the verify callback saw (and verify_detail_ words)
  std::string peer_leaf_der_;     // the peer's leaf as the verify callback saw it
};

}  // namespace mesh::net

#endif  // LOCKMESH_NET_TLS_TLS_SESSION_H_

// net/tls/tls_session.h: an mbedTLS session whose I/O callbacks read and write memory.
#include "net/tls/tls_session.h"

#include <mbedtls/error.h>

#include <cstring>
#include <ctime>

namespace mesh::net {
namespace {

constexpr unsigned char kTlsHandshakeRecord = 22;
constexpr unsigned char kTlsAlertRecord = 21;

std::string MbedError(int rc) {
  char text[200];
  mbedtls_strerror(rc, text, sizeof text);
  return text;
}

// What a TLS alert the peer sent means for us, in words.
std::string AlertMeaning(unsigned char alert) {
  switch (alert) {
    case MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA:
      return "the peer does not trust the CA that issued our certificate (unknown CA: our "
             "certificate is not from its --tls-ca)";
    case MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED:
      return "the peer refused our certificate as expired or not yet valid (certificate "
             "expired)";
    case MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED:
      return "the peer refused our certificate (access denied: e.g. a self-signed certificate "
             "where it requires one issued by its CA, or several CNs under --security mutual)";
    case MBEDTLS_SSL_ALERT_MSG_BAD_CERT:
      return "the peer refused our certificate (bad certificate)";
    case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT:
      return "the peer refused our certificate (unsupported certificate: its keyUsage or "
             "extendedKeyUsage does not allow this use, or its algorithm or key is not "
             "accepted)";
    case MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN:
      return "the peer refused our certificate (certificate unknown)";
    case MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED:
      return "the peer says our certificate is revoked";
    case MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE:
      return "the peer refused the handshake (handshake failure: it requires a client "
             "certificate we did not send, or we share no TLS 1.2 AEAD cipher suite, or the "
             "keyUsage or extendedKeyUsage of its own certificate does not let it serve TLS)";
    case MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION:
      return "the peer refused the TLS version (lockmesh speaks TLS 1.2)";
    case MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY:
      return "the peer refused our cipher suites as too weak";
    case MBEDTLS_SSL_ALERT_MSG_DECRYPT_ERROR:
      return "the peer could not verify our handshake signature (decrypt error: does our "
             "key match our certificate?)";
    case MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE:
      return "the peer received a message it did not expect (unexpected message)";
    case MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR:
      return "the peer could not decode our message (decode error)";
    case MBEDTLS_SSL_ALERT_MSG_BAD_RECORD_MAC:
      return "the peer could not authenticate our data (bad record MAC)";
    case 116:  // certificate_required (RFC 8446)
      return "the peer requires a client certificate and we sent none";
    default:
      return "the peer sent fatal TLS alert " + std::to_string(alert);
  }
}

}  // namespace

bool LooksLikeTlsHandshake(std::string_view b) {
  return b.size() >= 3 && static_cast<unsigned char>(b[0]) == kTlsHandshakeRecord && b[1] == 3 &&
         static_cast<unsigned char>(b[2]) <= 4;
}

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context, TlsRole role)
    : context_(std::move(context)), role_(role) {
  mbedtls_ssl_init(&ssl_);
}

TlsSession::~TlsSession() { mbedtls_ssl_free(&ssl_); }

Status TlsSession::Init() {
  int rc = mbedtls_ssl_setup(&ssl_, context_->config(role_));
  if (rc != 0) return Status::Internal("mbedtls_ssl_setup: " + MbedError(rc));
  mbedtls_ssl_set_bio(&ssl_, this, SendCallback, RecvCallback, nullptr);
  mbedtls_ssl_set_verify(&ssl_, VerifyCallback, this);
  initialized_ = true;
  return Status::OK();
}

void TlsSession::Feed(std::string_view ciphertext) {
  if (ciphertext.empty()) return;
  if (!saw_input_) {
    saw_input_ = true;
    // Every TLS record we can see first is a handshake record (or an alert refusing ours).
    auto first = static_cast<unsigned char>(ciphertext[0]);
    first_byte_bad_ = first != kTlsHandshakeRecord && first != kTlsAlertRecord;
  }
  if (input_offset_ == input_.size()) {
    input_.clear();
    input_offset_ = 0;
  } else if (input_offset_ > 64 * 1024 && input_offset_ * 2 > input_.size()) {
    input_.erase(0, input_offset_);
    input_offset_ = 0;
  }
  input_.append(ciphertext.data(), ciphertext.size());
}

int TlsSession::SendCallback(void* p, const unsigned char* buf, size_t len) {
  auto* self = static_cast<TlsSession*>(p);
  self->output_.append(reinterpret_cast<const char*>(buf), len);
  return static_cast<int>(len);
}

int TlsSession::RecvCallback(void* p, unsigned char* buf, size_t len) {
  auto* self = static_cast<TlsSession*>(p);
  size_t available = self->input_.size() - self->input_offset_;
  if (available == 0) return MBEDTLS_ERR_SSL_WANT_READ;
  size_t n = len < available ? len : available;
  std::memcpy(buf, self->input_.data() + self->input_offset_, n);
  self->input_offset_ += n;
  return static_cast<int>(n);
}

int TlsSession::VerifyCallback(void* p, mbedtls_x509_crt* crt, int depth, uint32_t* flags) {
  auto* self = static_cast<TlsSession*>(p);
  self->context_->CheckCertificate(*crt, depth, flags, &self->verify_detail_);
  self->described_flags_ |= *flags;
  // mbedTLS frees the chain when the handshake fails, before LateVerifyWords needs it.
  if (depth == 0)
    self->peer_leaf_der_.assign(reinterpret_cast<const char*>(crt->raw.p), crt->raw.len);
  return 0;
}

std::string TlsSession::LateVerifyWords() const {
  // mbedTLS checks keyUsage / extendedKeyUsage (and the EC curve) after the chain, so the
  // verify callback never saw those flags.
  uint32_t late = mbedtls_ssl_get_verify_result(&ssl_) & ~described_flags_;
  if (late == 0 || late == 0xFFFFFFFFu || peer_leaf_der_.empty()) return "";
  CertificateChain leaf;
  if (!CertificateChain::Parse(peer_leaf_der_, "the peer's certificate", &leaf).ok()) return "";
  return "certificate " + InspectCertificate(leaf.leaf()).subject + ": " +
         DescribeVerifyFlags(late, leaf.leaf());
}

std::string TlsSession::OwnCertificateWords(unsigned char alert) const {
  const CertificateChain& own = context_->own_chain();
  if (own.empty()) return "";
  const int64_t now = static_cast<int64_t>(time(nullptr));
  switch (alert) {
    case MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED: {
      std::string words;
      for (const CertificateInfo& info : own.Inspect()) {
        switch (info.ValidityAt(now)) {
          case Validity::kExpired:
            words +=
                "; our certificate " + info.subject + " expired on " + FormatUtc(info.not_after);
            break;
          case Validity::kNotYetValid:
            words += "; our certificate " + info.subject + " is not valid before " +
                     FormatUtc(info.not_before) + " (is this host's clock right?)";
            break;
          case Validity::kValid:
            break;
        }
      }
      if (words.empty()) {
        CertificateInfo leaf = InspectCertificate(own.leaf());
        words = "; by this host's clock our certificate " + leaf.subject + " is valid from " +
                FormatUtc(leaf.not_before) + " to " + FormatUtc(leaf.not_after) +
                ": is the peer's clock wrong?";
      }
      return words;
    }
    case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT: {
      std::string usage = DescribeUsageProblem(own.leaf(), role_);
      if (usage.empty()) return "";
      if (usage.find("extendedKeyUsage") != std::string::npos) {
        usage +=
            " (a node's certificate needs serverAuth and clientAuth, or no "
            "extendedKeyUsage, as `lockmesh cert` makes it)";
      }
      return "; our certificate " + InspectCertificate(own.leaf()).subject + ": " + usage;
    }
    case MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED: {
      CertificateInfo leaf = InspectCertificate(own.leaf());
      if (leaf.common_names.size() > 1) {
        return "; our certificate " + leaf.subject + " has " +
               std::to_string(leaf.common_names.size()) +
               " CNs, which --security mutual refuses (the CN is the node's id)";
      }
      if (leaf.self_signed) {
        return "; our certificate " + leaf.subject +
               " is self-signed, which --security encrypt and mutual refuse";
      }
      return "";
    }
    default:
      return "";
  }
}

Status TlsSession::Handshake() {
  if (handshake_done_) return Status::OK();
  if (!initialized_ || failed_) return Status::Internal("TLS session is not usable");
  if (first_byte_bad_) {
    failed_ = true;
    return Status::InvalidArgument(
        "the peer does not speak TLS (its first bytes are not a TLS handshake record): is it "
        "running with --security none? Both nodes need the same --security");
  }
  int rc = mbedtls_ssl_handshake(&ssl_);
  if (rc == 0) {
    handshake_done_ = true;
    return Status::OK();
  }
  if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return Status::OK();
  failed_ = true;
  return Explain(rc, "handshake");
}

Status TlsSession::Explain(int rc, const char* during) {
  std::string words;
  switch (rc) {
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
    case MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE: {
      // BAD_HS_CERTIFICATE: the chain verified, but the leaf's keyUsage/extendedKeyUsage (or
      // its curve) does not allow it here; or the message was malformed (no flags then).
      words = verify_detail_;
      if (std::string late = LateVerifyWords(); !late.empty()) {
        words += (words.empty() ? "" : "; ") + late;
      }
      if (rc == MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE && words.empty()) break;
      if (words.empty() && peer_certificate() != nullptr) {
        words = DescribeVerifyFlags(mbedtls_ssl_get_verify_result(&ssl_), *peer_certificate());
      }
      return Status::PermissionDenied("we refused the peer's certificate: " +
                                      (words.empty() ? MbedError(rc) : words));
    }
    case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE:
      // mbedTLS fails without telling the client; a handshake_failure alert does (TLS 1.2
      // has no certificate_required alert).
      mbedtls_ssl_send_alert_message(&ssl_, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                     MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE);
      return Status::PermissionDenied(
          "the peer presented no certificate; every secure mode requires one from both sides");
    case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE: {
      // mbedTLS 2.28 leaves the alert record in in_msg ([0] level, [1] description).
      unsigned char alert = ssl_.in_msg != nullptr ? ssl_.in_msg[1] : 0;
      peer_refused_ = true;
      std::string meaning = AlertMeaning(alert);
      if (alert == MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE && context_->own_chain().empty()) {
        meaning = "the peer requires a client certificate and we have none";
      }
      return Status::PermissionDenied(meaning + OwnCertificateWords(alert));
    }
    case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
      return Status::Unavailable("the peer closed the TLS session");
    case MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE:
      // A server whose own certificate may not serve (keyUsage / extendedKeyUsage) finds no
      // suite: mbedTLS skips the certificate for every one of them.
      if (role_ == TlsRole::kServer && !context_->own_chain().empty()) {
        std::string usage = DescribeUsageProblem(context_->own_chain().leaf(), role_);
        if (!usage.empty()) {
          return Status::PermissionDenied(
              "our certificate " + InspectCertificate(context_->own_chain().leaf()).subject +
              " cannot serve TLS: " + usage +
              " (a node's certificate needs serverAuth and clientAuth, or no "
              "extendedKeyUsage, as `lockmesh cert` makes it)");
        }
      }
      [[fallthrough]];
    case MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION:
    case MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN:
      return Status::PermissionDenied(
          "no common TLS version and cipher suite with the peer (lockmesh requires TLS 1.2 "
          "with an ECDHE AEAD suite)");
    case MBEDTLS_ERR_SSL_INVALID_RECORD:
    case MBEDTLS_ERR_SSL_BAD_HS_CLIENT_HELLO:
    case MBEDTLS_ERR_SSL_BAD_HS_SERVER_HELLO:
    case MBEDTLS_ERR_SSL_UNEXPECTED_RECORD:
      if (!handshake_done_) {
        return Status::InvalidArgument(
            "the peer does not speak TLS as expected (malformed handshake: " + MbedError(rc) +
            "); is it running with --security none?");
      }
      break;
    default:
      break;
  }
  return Status::InvalidArgument(std::string("TLS ") + during + " failed: " + MbedError(rc));
}

Status TlsSession::Write(std::string_view plaintext) {
  if (!handshake_done_ || failed_) return Status::Internal("TLS write before the handshake");
  const auto* p = reinterpret_cast<const unsigned char*>(plaintext.data());
  size_t left = plaintext.size();
  while (left > 0) {
    int rc = mbedtls_ssl_write(&ssl_, p, left);
    if (rc < 0) {
      failed_ = true;
      return Explain(rc, "write");
    }
    p += rc;
    left -= static_cast<size_t>(rc);
  }
  return Status::OK();
}

Status TlsSession::Read(std::string* plaintext) {
  if (!handshake_done_ || failed_) return Status::Internal("TLS read before the handshake");
  constexpr size_t kChunk = 16 * 1024 + 256;
  for (;;) {
    size_t at = plaintext->size();
    plaintext->resize(at + kChunk);
    int rc =
        mbedtls_ssl_read(&ssl_, reinterpret_cast<unsigned char*>(plaintext->data() + at), kChunk);
    if (rc > 0) {
      plaintext->resize(at + static_cast<size_t>(rc));
      continue;
    }
    plaintext->resize(at);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return Status::OK();
    failed_ = true;
    if (rc == 0) return Status::Unavailable("the peer closed the TLS session");
    return Explain(rc, "read");
  }
}

void TlsSession::Close() {
  if (closed_ || !initialized_) return;
  closed_ = true;
  if (handshake_done_ && !failed_) mbedtls_ssl_close_notify(&ssl_);
}

void TlsSession::TakeOutput(std::string* out) {
  out->clear();
  out->swap(output_);
}

std::string TlsSession::version() const { return mbedtls_ssl_get_version(&ssl_); }

std::string TlsSession::cipher_suite() const {
  const char* name = mbedtls_ssl_get_ciphersuite(&ssl_);
  return name ? name : "";
}

const mbedtls_x509_crt* TlsSession::peer_certificate() const {
  // During a failed handshake the chain is still in the session being negotiated.
  if (ssl_.session != nullptr && ssl_.session->peer_cert != nullptr) return ssl_.session->peer_cert;
  if (ssl_.session_negotiate != nullptr && ssl_.session_negotiate->peer_cert != nullptr) {
    return ssl_.session_negotiate->peer_cert;
  }
  return nullptr;
}

Fingerprint TlsSession::peer_fingerprint() const {
  const mbedtls_x509_crt* crt = peer_certificate();
  if (crt == nullptr || crt->raw.p == nullptr) return Fingerprint();
  return Fingerprint::OfDer(crt->raw.p, crt->raw.len);
}

}  // namespace mesh::net

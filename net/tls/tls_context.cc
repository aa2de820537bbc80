// net/tls/tls_context.h: one immutable mbedTLS configuration pair per security level.
#include "net/tls/tls_context.h"

#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/ssl_ciphersuites.h>

#include <cstring>

#include "core/time_text.h"
#include "net/tls/tls_random.h"

namespace mesh::net {
namespace {

// ECDHE and AEAD only; ECDSA before RSA because lockmesh's own certificates are EC P-256.
// ChaCha20-Poly1305 comes first because mbedTLS 2.28's AES-GCM is slower even with AES-NI
// and PCLMULQDQ in use (mbedtls_aesni_has_support says yes for both): it runs one AES block
// and one carry-less multiply, each a separate call with a full reduction, per 16 bytes.
// Measured on the 2-core EPYC VM (5 Dec 2026): 16 KiB records at 280 MB/s per core for
// AES-128-GCM against 505 MB/s for ChaCha20-Poly1305, and tls_link_bench bulk at 137 MB/s
// against 288 MB/s. AES-GCM stays for peers (e.g. OpenSSL clients) that prefer it. The
// list is what both roles offer and accept.
const int kCipherSuites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

std::string MbedError(int rc) {
  char text[200];
  mbedtls_strerror(rc, text, sizeof text);
  return text;
}

int64_t ToUnix(const mbedtls_x509_time& t) {
  return core::UnixFromUtc(t.year, t.mon, t.day, t.hour, t.min, t.sec);
}

std::string Subject(const mbedtls_x509_crt& crt) {
  char buf[512];
  int n = mbedtls_x509_dn_gets(buf, sizeof buf, &crt.subject);
  return n < 0 ? std::string("?") : std::string(buf, static_cast<size_t>(n));
}

// Self-issued (subject == issuer) and signed by its own key.
bool IsSelfSigned(const mbedtls_x509_crt& crt) {
  if (crt.issuer_raw.len != crt.subject_raw.len ||
      std::memcmp(crt.issuer_raw.p, crt.subject_raw.p, crt.issuer_raw.len) != 0) {
    return false;
  }
  const mbedtls_md_info_t* md = mbedtls_md_info_from_type(crt.sig_md);
  if (md == nullptr) return false;
  unsigned char hash[MBEDTLS_MD_MAX_SIZE];
  if (mbedtls_md(md, crt.tbs.p, crt.tbs.len, hash) != 0) return false;
  return mbedtls_pk_verify_ext(crt.sig_pk, crt.sig_opts, const_cast<mbedtls_pk_context*>(&crt.pk),
                               crt.sig_md, hash, mbedtls_md_get_size(md), crt.sig.p,
                               crt.sig.len) == 0;
}

// DescribeUsageProblem for the roles asked for.
std::string UsageProblem(const mbedtls_x509_crt& crt, bool as_server, bool as_client) {
  std::string out;
  auto add = [&](const char* words) {
    if (!out.empty()) out += "; ";
    out += words;
  };
  if (mbedtls_x509_crt_check_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0) {
    add("its keyUsage lacks digitalSignature, which TLS needs (the key signs the handshake)");
  }
  if (as_server &&
      mbedtls_x509_crt_check_extended_key_usage(&crt, MBEDTLS_OID_SERVER_AUTH,
                                                MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)) != 0) {
    add("its extendedKeyUsage lacks serverAuth (TLS server), which a node needs to accept "
        "peers' connections");
  }
  if (as_client &&
      mbedtls_x509_crt_check_extended_key_usage(&crt, MBEDTLS_OID_CLIENT_AUTH,
                                                MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)) != 0) {
    add("its extendedKeyUsage lacks clientAuth (TLS client), which a node needs to dial peers");
  }
  return out;
}

}  // namespace

const char* SecurityLevelName(SecurityLevel level) {
  switch (level) {
    case SecurityLevel::kNone:
      return "none";
    case SecurityLevel::kEncrypt:
      return "encrypt";
    case SecurityLevel::kMutual:
      return "mutual";
    case SecurityLevel::kTofu:
      return "tofu";
  }
  return "?";
}

Status ParseSecurityLevel(std::string_view text, SecurityLevel* level) {
  for (SecurityLevel l : {SecurityLevel::kNone, SecurityLevel::kEncrypt, SecurityLevel::kMutual,
                          SecurityLevel::kTofu}) {
    if (text == SecurityLevelName(l)) {
      *level = l;
      return Status::OK();
    }
  }
  return Status::InvalidArgument("unknown security level '" + std::string(text) +
                                 "' (expected none, encrypt, mutual or tofu)");
}

std::string PeerCommonName(const mbedtls_x509_crt& crt) {
  std::string cn;
  for (const mbedtls_x509_name* n = &crt.subject; n != nullptr; n = n->next) {
    if (n->oid.p != nullptr && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
      cn.assign(reinterpret_cast<const char*>(n->val.p), n->val.len);
    }
  }
  return cn;
}

size_t CommonNameCount(const mbedtls_x509_crt& crt) {
  size_t count = 0;
  for (const mbedtls_x509_name* n = &crt.subject; n != nullptr; n = n->next) {
    if (n->oid.p != nullptr && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) ++count;
  }
  return count;
}

std::string DescribeUsageProblem(const mbedtls_x509_crt& crt, TlsRole role) {
  return UsageProblem(crt, role == TlsRole::kServer, role == TlsRole::kClient);
}

std::string DescribeVerifyFlags(uint32_t flags, const mbedtls_x509_crt& crt) {
  std::string out;
  auto add = [&](const std::string& s) {
    if (!out.empty()) out += "; ";
    out += s;
  };
  // CheckCertificate adds EXPIRED to FUTURE (for the alert): a certificate is never both.
  if ((flags & MBEDTLS_X509_BADCERT_EXPIRED) && !(flags & MBEDTLS_X509_BADCERT_FUTURE)) {
    add("expired on " + FormatUtc(ToUnix(crt.valid_to)));
  }
  if (flags & MBEDTLS_X509_BADCERT_FUTURE) {
    add("not valid before " + FormatUtc(ToUnix(crt.valid_from)));
  }
  if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) {
    add("not issued by a CA this node trusts (--tls-ca)");
  }
  if (flags & MBEDTLS_X509_BADCERT_MISSING) add("no certificate");
  if (flags & MBEDTLS_X509_BADCERT_REVOKED) add("revoked");
  if (flags & MBEDTLS_X509_BADCERT_KEY_USAGE) {
    add(mbedtls_x509_crt_check_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0
            ? "its keyUsage lacks digitalSignature, which TLS needs (the key signs the handshake)"
            : "its keyUsage does not allow TLS authentication");
  }
  if (flags & MBEDTLS_X509_BADCERT_EXT_KEY_USAGE) {
    std::string missing;
    if (mbedtls_x509_crt_check_extended_key_usage(&crt, MBEDTLS_OID_SERVER_AUTH,
                                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)) != 0) {
      missing = "serverAuth (TLS server)";
    }
    if (mbedtls_x509_crt_check_extended_key_usage(&crt, MBEDTLS_OID_CLIENT_AUTH,
                                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)) != 0) {
      missing += std::string(missing.empty() ? "" : " and ") + "clientAuth (TLS client)";
    }
    add((missing.empty() ? std::string("its extendedKeyUsage does not allow this use")
                         : "its extendedKeyUsage lacks " + missing) +
        ": a node's certificate needs serverAuth and clientAuth (a node is dialled and dials), "
        "or no extendedKeyUsage, as `lockmesh cert` makes it");
  }
  if (flags & MBEDTLS_X509_BADCERT_NS_CERT_TYPE) {
    add("its Netscape certificate type does not allow TLS authentication");
  }
  if (flags &
      (MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK | MBEDTLS_X509_BADCERT_BAD_KEY)) {
    add("uses an algorithm or key size that is not acceptable (e.g. SHA-1, RSA < 2048 bits)");
  }
  if (flags & MBEDTLS_X509_BADCERT_SKIP_VERIFY) add("verification was skipped");
  // BADCERT_OTHER carries our own rules; CheckCertificate words them itself.
  uint32_t known = MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE |
                   MBEDTLS_X509_BADCERT_NOT_TRUSTED | MBEDTLS_X509_BADCERT_MISSING |
                   MBEDTLS_X509_BADCERT_REVOKED | MBEDTLS_X509_BADCERT_KEY_USAGE |
                   MBEDTLS_X509_BADCERT_EXT_KEY_USAGE | MBEDTLS_X509_BADCERT_NS_CERT_TYPE |
                   MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK |
                   MBEDTLS_X509_BADCERT_BAD_KEY | MBEDTLS_X509_BADCERT_SKIP_VERIFY |
                   MBEDTLS_X509_BADCERT_OTHER;
  if (flags & ~known) {
    char buf[256];
    int n = mbedtls_x509_crt_verify_info(buf, sizeof buf, "", flags & ~known);
    add(n > 0 ? std::string(buf, static_cast<size_t>(n)) : "failed verification");
  }
  return out;
}

TlsContext::TlsContext(const TlsOptions& options) : options_(options) {
  mbedtls_ssl_config_init(&client_config_);
  mbedtls_ssl_config_init(&server_config_);
}

TlsContext::~TlsContext() {
  mbedtls_ssl_config_free(&client_config_);
  mbedtls_ssl_config_free(&server_config_);
}

Status TlsContext::Create(const TlsOptions& options, std::shared_ptr<const TlsContext>* out) {
  if (options.level == SecurityLevel::kNone) {
    return Status::InvalidArgument("--security none uses no TLS configuration");
  }
  MESH_RETURN_IF_ERROR(InitTlsRandom());
  std::shared_ptr<TlsContext> context(new TlsContext(options));
  MESH_RETURN_IF_ERROR(context->Build());
  *out = std::move(context);
  return Status::OK();
}

Status TlsContext::Build() {
  const char* level = SecurityLevelName(options_.level);
  bool have_cert = !options_.cert_file.empty() || !options_.key_file.empty();
  if (!have_cert && !options_.allow_no_certificate) {
    return Status::InvalidArgument(std::string("--security ") + level +
                                   " needs --tls-cert and --tls-key (make them with `lockmesh "
                                   "cert`)");
  }
  if (have_cert) {
    if (options_.cert_file.empty() || options_.key_file.empty()) {
      return Status::InvalidArgument("--tls-cert and --tls-key go together");
    }
    Status st = CertificateChain::Load(options_.cert_file, &own_chain_);
    if (!st.ok()) return st.Annotate("--tls-cert");
    st = PrivateKey::Load(options_.key_file, &own_key_);
    if (!st.ok()) return st.Annotate("--tls-key");
    st = CheckKeyMatchesCertificate(own_chain_, own_key_);
    if (!st.ok()) {
      return st.Annotate("--tls-key " + options_.key_file + " and --tls-cert " +
                         options_.cert_file);
    }
    own_fingerprint_ = Fingerprint::OfDer(own_chain_.leaf().raw.p, own_chain_.leaf().raw.len);
  }
  if (options_.level == SecurityLevel::kMutual && have_cert) {
    if (size_t count = CommonNameCount(own_chain_.leaf()); count > 1) {
      return Status::InvalidArgument(
          "--security mutual: our certificate " + options_.cert_file + " (" +
          Subject(own_chain_.leaf()) + ") has " + std::to_string(count) +
          " CNs; the CN is the node's id, so a certificate must have exactly one (make one "
          "with `lockmesh cert node --ca CA_DIR --cn " +
          ShellQuote(options_.node_id) + " --out DIR`)");
    }
    std::string cn = PeerCommonName(own_chain_.leaf());
    if (cn != options_.node_id) {
      return Status::InvalidArgument(
          "--security mutual: our certificate " + options_.cert_file + " has CN '" + cn +
          "' but this node's id is '" + options_.node_id +
          "'; each node needs its own certificate whose CN is its id (make one with `lockmesh "
          "cert node --ca CA_DIR --cn " +
          ShellQuote(options_.node_id) + " --out DIR`, or run with --node-id " + ShellQuote(cn) +
          ")");
    }
  }
  if (options_.level == SecurityLevel::kEncrypt || options_.level == SecurityLevel::kMutual) {
    if (options_.ca_file.empty()) {
      return Status::InvalidArgument(std::string("--security ") + level +
                                     " needs --tls-ca (the CA certificate that issued the "
                                     "nodes' certificates)");
    }
    Status st = CertificateChain::Load(options_.ca_file, &cas_);
    if (!st.ok()) return st.Annotate("--tls-ca");
  }
  MESH_RETURN_IF_ERROR(BuildConfig(TlsRole::kClient, &client_config_));
  MESH_RETURN_IF_ERROR(BuildConfig(TlsRole::kServer, &server_config_));
  return Status::OK();
}

Status TlsContext::BuildConfig(TlsRole role, mbedtls_ssl_config* conf) {
  int rc = mbedtls_ssl_config_defaults(
      conf, role == TlsRole::kClient ? MBEDTLS_SSL_IS_CLIENT : MBEDTLS_SSL_IS_SERVER,
      MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
  if (rc != 0) return Status::Internal("mbedtls_ssl_config_defaults: " + MbedError(rc));
  mbedtls_ssl_conf_rng(conf, TlsRandom, TlsRandomContext());
  mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_ciphersuites(conf, kCipherSuites);
  mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED);
#if defined(MBEDTLS_SSL_SESSION_TICKETS)
  mbedtls_ssl_conf_session_tickets(conf, MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
#endif
#if defined(MBEDTLS_SSL_RENEGOTIATION)
  mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
#endif
  if (!own_chain_.empty()) {
    rc = mbedtls_ssl_conf_own_cert(conf, const_cast<mbedtls_x509_crt*>(own_chain_.get()),
                                   own_key_.get());
    if (rc != 0) return Status::Internal("mbedtls_ssl_conf_own_cert: " + MbedError(rc));
  }
  if (!cas_.empty()) {
    mbedtls_ssl_conf_ca_chain(conf, cas_.get(), nullptr);
  } else if (!own_chain_.empty()) {
    // tofu: mbedTLS insists on a CA chain when verification is required. Our own
    // certificate stands in; peers' self-signed certificates are accepted by
    // CheckCertificate, and what matters (the fingerprint) is checked after the Hello.
    mbedtls_ssl_conf_ca_chain(conf, own_chain_.get(), nullptr);
  }
  // The per-session verify callback (TlsSession) calls CheckCertificate.
  return Status::OK();
}

void TlsContext::CheckCertificate(const mbedtls_x509_crt& crt, int depth, uint32_t* flags,
                                  std::string* reason) const {
  bool self_signed = IsSelfSigned(crt);
  if (options_.level == SecurityLevel::kTofu) {
    // A self-signed certificate has no one above it to vouch for it: the pin does.
    if (self_signed) *flags &= ~MBEDTLS_X509_BADCERT_NOT_TRUSTED;
  } else if (depth == 0 && self_signed) {
    *flags |= MBEDTLS_X509_BADCERT_OTHER;
    *flags &= ~MBEDTLS_X509_BADCERT_NOT_TRUSTED;  // say the one thing that matters
    if (!reason->empty()) *reason += "; ";
    *reason += "certificate " + Subject(crt) + " is self-signed, and --security " +
               SecurityLevelName(options_.level) +
               " accepts only certificates issued by the CA of --tls-ca (self-signed "
               "certificates are for --security tofu)";
  }
  if (options_.level == SecurityLevel::kMutual && depth == 0) {
    size_t count = CommonNameCount(crt);
    if (count != 1) {
      *flags |= MBEDTLS_X509_BADCERT_OTHER;
      if (!reason->empty()) *reason += "; ";
      *reason += "certificate " + Subject(crt) + " has " +
                 (count == 0 ? std::string("no CN") : std::to_string(count) + " CNs") +
                 ", and --security mutual takes the CN as the node's id, so it accepts only "
                 "certificates with exactly one CN";
    }
  }
  uint32_t rest = *flags & ~MBEDTLS_X509_BADCERT_OTHER;
  if (rest != 0) {
    if (!reason->empty()) *reason += "; ";
    *reason += "certificate " + Subject(crt) + (depth > 0 ? " (in its chain)" : "") + ": " +
               DescribeVerifyFlags(rest, crt);
  }
  // mbedTLS 2.28 picks the alert from the flags and has none for FUTURE alone
  // (certificate_unknown); certificate_expired means "expired or not currently valid".
  if (*flags & MBEDTLS_X509_BADCERT_FUTURE) *flags |= MBEDTLS_X509_BADCERT_EXPIRED;
}

std::vector<std::string> TlsContext::CertificateWarnings(int64_t now) const {
  // Only what the warning words need (InspectCertificate also checks signatures).
  auto info = [](const mbedtls_x509_crt& crt) {
    CertificateInfo i;
    i.subject = Subject(crt);
    i.not_before = ToUnix(crt.valid_from);
    i.not_after = ToUnix(crt.valid_to);
    return i;
  };
  std::vector<std::string> out;
  std::string ours = "our certificate (--tls-cert " + options_.cert_file + ")";
  bool leaf = true;
  for (const mbedtls_x509_crt* c = own_chain_.get(); c != nullptr && c->raw.p != nullptr;
       c = c->next) {
    std::string w = CertificateExpiryWarning(
        info(*c), leaf ? ours : "a certificate in the chain of " + ours, now);
    if (!w.empty()) out.push_back(std::move(w));
    leaf = false;
  }
  for (const mbedtls_x509_crt* c = cas_.get(); c != nullptr && c->raw.p != nullptr; c = c->next) {
    std::string w = CertificateExpiryWarning(
        info(*c), "the CA certificate of --tls-ca " + options_.ca_file, now);
    if (!w.empty()) out.push_back(std::move(w));
  }
  if (!own_chain_.empty()) {
    std::string usage = UsageProblem(own_chain_.leaf(), /*as_server=*/true, /*as_client=*/true);
    if (!usage.empty()) {
      out.push_back(ours + " " + Subject(own_chain_.leaf()) + ": " + usage +
                    "; handshakes that need it fail");
    }
  }
  return out;
}

Status TlsContext::VerifyChain(const mbedtls_x509_crt& chain) const {
  struct Ctx {
    const TlsContext* self;
    std::string reason;
  } ctx{this, ""};
  auto cb = [](void* p, mbedtls_x509_crt* crt, int depth, uint32_t* flags) -> int {
    auto* c = static_cast<Ctx*>(p);
    c->self->CheckCertificate(*crt, depth, flags, &c->reason);
    return 0;
  };
  const mbedtls_x509_crt* trust = cas_.empty() ? own_chain_.get() : cas_.get();
  uint32_t flags = 0;
  int rc = mbedtls_x509_crt_verify(const_cast<mbedtls_x509_crt*>(&chain),
                                   const_cast<mbedtls_x509_crt*>(trust), nullptr, nullptr, &flags,
                                   cb, &ctx);
  if (rc == 0 && flags == 0) return Status::OK();
  if (ctx.reason.empty()) ctx.reason = DescribeVerifyFlags(flags, chain);
  if (ctx.reason.empty()) ctx.reason = MbedError(rc);
  return Status::PermissionDenied(ctx.reason);
}

}  // namespace mesh::net

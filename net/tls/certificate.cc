// Certificates and keys on mbedTLS 2.28 (see certificate.h).
#include "net/tls/certificate.h"

#include <fcntl.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "core/hex.h"
#include "core/time_text.h"
#include "net/support/errno_text.h"
#include "net/support/posix_file_system.h"
#include "net/tls/tls_random.h"

namespace mesh::net {
namespace {

std::string MbedError(int rc) {
  char text[160];
  mbedtls_strerror(rc, text, sizeof text);
  return text;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

int64_t ToUnix(const mbedtls_x509_time& t) {
  return core::UnixFromUtc(t.year, t.mon, t.day, t.hour, t.min, t.sec);
}

// Calls an mbedTLS "print into buffer" function, growing the buffer if it was too small.
template <typename Print>
std::string PrintGrowing(Print print) {
  for (size_t size = 512; size <= 65536; size *= 4) {
    std::string buffer(size, '\0');
    int n = print(buffer.data(), buffer.size());
    if (n >= 0) {
      buffer.resize(static_cast<size_t>(n));
      return buffer;
    }
  }
  return "(too long to print)";
}

bool IsIdLike(const std::string& s) {
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
      return false;
    }
  }
  return !s.empty();
}

// "20261123174000" for mbedtls_x509write_crt_set_validity; false outside years 1950..9999.
bool FormatX509Time(int64_t t, std::string* out) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  if (gmtime_r(&tt, &tm) == nullptr) return false;
  int year = tm.tm_year + 1900;
  if (year < 1950 || year > 9999) return false;
  char buffer[32];
  snprintf(buffer, sizeof buffer, "%04d%02d%02d%02d%02d%02d", year, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec);
  *out = buffer;
  return true;
}

bool SignatureVerifiesWithOwnKey(const mbedtls_x509_crt& crt) {
  const mbedtls_md_info_t* md = mbedtls_md_info_from_type(crt.sig_md);
  if (md == nullptr) return false;
  unsigned char hash[MBEDTLS_MD_MAX_SIZE];
  if (mbedtls_md(md, crt.tbs.p, crt.tbs.len, hash) != 0) return false;
  return mbedtls_pk_verify_ext(crt.sig_pk, crt.sig_opts, const_cast<mbedtls_pk_context*>(&crt.pk),
                               crt.sig_md, hash, mbedtls_md_get_size(md), crt.sig.p,
                               crt.sig.len) == 0;
}

std::string KeyType(const mbedtls_pk_context& pk) {
  switch (mbedtls_pk_get_type(&pk)) {
    case MBEDTLS_PK_ECKEY:
    case MBEDTLS_PK_ECKEY_DH:
    case MBEDTLS_PK_ECDSA: {
      const mbedtls_ecp_keypair* ec = mbedtls_pk_ec(pk);
      const mbedtls_ecp_curve_info* curve = mbedtls_ecp_curve_info_from_grp_id(ec->grp.id);
      std::string name = curve ? curve->name : "unknown curve";
      if (ec->grp.id == MBEDTLS_ECP_DP_SECP256R1) name = "P-256";
      if (ec->grp.id == MBEDTLS_ECP_DP_SECP384R1) name = "P-384";
      if (ec->grp.id == MBEDTLS_ECP_DP_SECP521R1) name = "P-521";
      return "EC " + name;
    }
    case MBEDTLS_PK_RSA:
      return "RSA " + std::to_string(mbedtls_pk_get_bitlen(&pk));
    default:
      return mbedtls_pk_get_name(&pk);
  }
}

// Subject DN string for x509write: CN first, then O. mbedTLS 2.28 only understands "\," as an
// escape inside a value.
std::string SubjectFor(const std::string& cn) {
  std::string escaped;
  for (char c : cn) {
    if (c == ',') escaped += '\\';
    escaped += c;
  }
  return "CN=" + escaped + ",O=lockmesh";
}

// Replaces `writer`'s issuer with a byte-for-byte copy of `subject` (the CA's subject as
// parsed), so that the issuer DN matches exactly whatever tool made the CA.
Status CopyIssuerName(const mbedtls_x509_name* subject, mbedtls_x509write_cert* writer) {
  mbedtls_asn1_free_named_data_list(&writer->issuer);
  // The writer emits the list head last, so prepending each parsed RDN keeps the order.
  for (const mbedtls_x509_name* name = subject; name != nullptr && name->oid.p != nullptr;
       name = name->next) {
    auto* node = static_cast<mbedtls_asn1_named_data*>(calloc(1, sizeof(mbedtls_asn1_named_data)));
    if (node == nullptr) return Status::Internal("out of memory copying the issuer name");
    node->oid.tag = name->oid.tag;
    node->oid.len = name->oid.len;
    node->oid.p = static_cast<unsigned char*>(malloc(name->oid.len));
    node->val.tag = name->val.tag;
    node->val.len = name->val.len;
    node->val.p = static_cast<unsigned char*>(malloc(name->val.len ? name->val.len : 1));
    if (node->oid.p == nullptr || node->val.p == nullptr) {
      free(node->oid.p);
      free(node->val.p);
      free(node);
      return Status::Internal("out of memory copying the issuer name");
    }
    memcpy(node->oid.p, name->oid.p, name->oid.len);
    if (name->val.len) memcpy(node->val.p, name->val.p, name->val.len);
    node->next = writer->issuer;
    writer->issuer = node;
  }
  return Status::OK();
}

// DER of a subjectAltName extension value with one dNSName.
Status SubjectAltNameDer(const std::string& dns_name, std::string* der) {
  unsigned char buffer[512];
  unsigned char* p = buffer + sizeof buffer;
  size_t len = 0;
  int rc;
  auto check = [&](int r) {
    if (r < 0) rc = r;
    return r;
  };
  rc = 0;
  int n = check(mbedtls_asn1_write_raw_buffer(
      &p, buffer, reinterpret_cast<const unsigned char*>(dns_name.data()), dns_name.size()));
  if (rc == 0) len += n;
  if (rc == 0) n = check(mbedtls_asn1_write_len(&p, buffer, len));
  if (rc == 0) len += n;
  if (rc == 0)
    n = check(mbedtls_asn1_write_tag(&p, buffer,
                                     MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME));
  if (rc == 0) len += n;
  if (rc == 0) n = check(mbedtls_asn1_write_len(&p, buffer, len));
  if (rc == 0) len += n;
  if (rc == 0) {
    n = check(mbedtls_asn1_write_tag(&p, buffer, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
  }
  if (rc == 0) len += n;
  if (rc != 0) return Status::InvalidArgument("cannot encode the subjectAltName: " + MbedError(rc));
  der->assign(reinterpret_cast<const char*>(p), len);
  return Status::OK();
}

// DER of an extendedKeyUsage extension value (a SEQUENCE of purpose OIDs) for `eku`.
Status ExtendedKeyUsageDer(unsigned eku, std::string* der) {
  unsigned char buffer[64];
  unsigned char* p = buffer + sizeof buffer;
  int len = 0;
  auto add = [&](int n) {
    if (n < 0) return false;
    len += n;
    return true;
  };
  // Written back to front: clientAuth, then serverAuth, so serverAuth comes first.
  bool ok = true;
  if (eku & kEkuClientAuth) {
    ok = ok && add(mbedtls_asn1_write_oid(&p, buffer, MBEDTLS_OID_CLIENT_AUTH,
                                          MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)));
  }
  if (eku & kEkuServerAuth) {
    ok = ok && add(mbedtls_asn1_write_oid(&p, buffer, MBEDTLS_OID_SERVER_AUTH,
                                          MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)));
  }
  ok = ok && add(mbedtls_asn1_write_len(&p, buffer, static_cast<size_t>(len)));
  ok = ok &&
       add(mbedtls_asn1_write_tag(&p, buffer, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
  if (!ok) return Status::Internal("cannot encode the extendedKeyUsage");
  der->assign(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
  return Status::OK();
}

// Adds `cn` as one more CN attribute at the end of `writer`'s subject (the writer emits the
// list head last). mbedtls_x509write_crt_set_subject_name keeps one value per attribute type.
Status AppendSubjectCommonName(const std::string& cn, mbedtls_x509write_cert* writer) {
  auto* node = static_cast<mbedtls_asn1_named_data*>(calloc(1, sizeof(mbedtls_asn1_named_data)));
  if (node == nullptr) return Status::Internal("out of memory adding a CN");
  node->oid.tag = MBEDTLS_ASN1_OID;
  node->oid.len = MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN);
  node->oid.p = static_cast<unsigned char*>(malloc(node->oid.len));
  node->val.tag = MBEDTLS_ASN1_UTF8_STRING;
  node->val.len = cn.size();
  node->val.p = static_cast<unsigned char*>(malloc(cn.size()));
  if (node->oid.p == nullptr || node->val.p == nullptr) {
    free(node->oid.p);
    free(node->val.p);
    free(node);
    return Status::Internal("out of memory adding a CN");
  }
  memcpy(node->oid.p, MBEDTLS_OID_AT_CN, node->oid.len);
  memcpy(node->val.p, cn.data(), cn.size());
  node->next = writer->subject;
  writer->subject = node;
  return Status::OK();
}

Status ValidateCommonName(const std::string& cn) {
  if (cn.empty()) return Status::InvalidArgument("the certificate's CN is empty");
  if (cn.size() > 128) {
    return Status::InvalidArgument("the CN '" + cn.substr(0, 40) +
                                   "...' is longer than 128 characters");
  }
  for (char c : cn) {
    if (c < 0x20 || c > 0x7e || c == '\\') {
      return Status::InvalidArgument("the CN '" + cn +
                                     "' may hold only printable ASCII characters other than '\\'");
    }
  }
  if (cn.front() == ' ' || cn.back() == ' ') {
    return Status::InvalidArgument("the CN '" + cn + "' starts or ends with a space");
  }
  return Status::OK();
}

Status ValidateSpec(const CertificateSpec& spec, std::string* not_before, std::string* not_after) {
  MESH_RETURN_IF_ERROR(ValidateCommonName(spec.common_name));
  for (const std::string& cn : spec.extra_common_names)
    MESH_RETURN_IF_ERROR(ValidateCommonName(cn));
  if (spec.not_before >= spec.not_after) {
    return Status::InvalidArgument("the validity period is empty (not-before " +
                                   FormatUtc(spec.not_before) + " is not before not-after " +
                                   FormatUtc(spec.not_after) + ")");
  }
  if (!FormatX509Time(spec.not_before, not_before) || !FormatX509Time(spec.not_after, not_after)) {
    return Status::InvalidArgument("the validity period must lie within the years 1950..9999");
  }
  return Status::OK();
}

// Owns the mbedTLS objects of one generation so that every exit path frees them.
struct Generation {
  Generation() {
    mbedtls_pk_init(&key);
    mbedtls_x509write_crt_init(&writer);
    mbedtls_mpi_init(&serial);
  }
  ~Generation() {
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&writer);
    mbedtls_pk_free(&key);
  }
  mbedtls_pk_context key;
  mbedtls_x509write_cert writer;
  mbedtls_mpi serial;
};

// Writes `data` to `path` with exactly `mode`, atomically and durably, refusing an existing
// file unless `overwrite` (FileSystem::WriteFileAtomic; a per-process temporary file, as
// two `lockmesh cert` runs may write one directory at once).
Status WriteFileWithMode(const std::string& path, const std::string& data, mode_t mode,
                         bool overwrite) {
  core::AtomicWriteOptions options;
  options.mode = mode;
  options.overwrite = overwrite;
  options.unique_temp = true;
  Status st = PosixFileSystem()->WriteFileAtomic(path, data, options);
  if (st.code() == Status::Code::kAlreadyExists) {
    return Status::AlreadyExists(path + " already exists (use --force to replace it)");
  }
  return st;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

}  // namespace

// ------------------------------------------------------------------------------ Fingerprint

Fingerprint Fingerprint::OfDer(const unsigned char* der, size_t len) {
  std::array<uint8_t, 32> digest{};
  mbedtls_sha256_ret(der, len, digest.data(), /*is224=*/0);
  return Fingerprint(digest);
}

Status Fingerprint::Parse(std::string_view text, Fingerprint* out) {
  std::string_view trimmed = Trim(text);
  std::string lower = Lower(trimmed);
  std::string_view rest = lower;
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("'" + std::string(trimmed) +
                                   "' is not a SHA-256 fingerprint: " + why);
  };
  if (size_t eq = rest.find("fingerprint="); eq != std::string_view::npos) {
    std::string_view digest = Trim(rest.substr(0, eq));
    if (digest != "sha256" && digest != "sha2-256") {
      return bad("it is a " + std::string(digest.empty() ? "digest-less" : digest) +
                 " fingerprint (use `openssl x509 -noout -fingerprint -sha256`)");
    }
    rest = Trim(rest.substr(eq + strlen("fingerprint=")));
  } else if (rest.rfind("sha256$", 0) == 0) {
    rest.remove_prefix(strlen("sha256$"));
  } else if (size_t dollar = rest.find('$'); dollar != std::string_view::npos) {
    return bad("unknown digest '" + std::string(rest.substr(0, dollar)) + "' (expected sha256$)");
  }
  std::string hex;
  bool colons = rest.find(':') != std::string_view::npos;
  size_t group = 0;
  for (char c : rest) {
    if (c == ':' && colons) {
      if (group != 2) return bad("colon-separated groups must be two hex digits each");
      group = 0;
      continue;
    }
    if (core::HexDigitValue(c) < 0) return bad(std::string("'") + c + "' is not a hex digit");
    hex += c;
    ++group;
  }
  if (colons && group != 2) return bad("colon-separated groups must be two hex digits each");
  if (hex.size() != 64) {
    return bad("it has " + std::to_string(hex.size()) + " hex digits, a SHA-256 digest has 64");
  }
  std::array<uint8_t, 32> bytes{};
  for (size_t i = 0; i < 32; ++i) {
    bytes[i] = static_cast<uint8_t>(core::HexDigitValue(hex[2 * i]) * 16 +
                                    core::HexDigitValue(hex[2 * i + 1]));
  }
  *out = Fingerprint(bytes);
  return Status::OK();
}

std::string Fingerprint::ToColonHex() const {
  std::string out;
  out.reserve(32 * 3);
  for (size_t i = 0; i < bytes_.size(); ++i) {
    if (i) out += ':';
    core::AppendHexByte(&out, bytes_[i], core::HexCase::kUpper);
  }
  return out;
}

std::string Fingerprint::ToOpenSsl() const { return "sha256 Fingerprint=" + ToColonHex(); }

std::string Fingerprint::ToCompact() const {
  std::string out = "sha256$";
  for (uint8_t b : bytes_) core::AppendHexByte(&out, b);
  return out;
}

// ------------------------------------------------------------------------------ inspection

const char* ValidityName(Validity validity) {
  switch (validity) {
    case Validity::kValid:
      return "valid";
    case Validity::kExpired:
      return "expired";
    case Validity::kNotYetValid:
      return "not yet valid";
  }
  return "?";
}

Validity CertificateInfo::ValidityAt(int64_t now) const {
  if (now < not_before) return Validity::kNotYetValid;
  if (now > not_after) return Validity::kExpired;
  return Validity::kValid;
}

CertificateExpiry CheckCertificateExpiry(int64_t not_before, int64_t not_after, int64_t now,
                                         int warning_days) {
  constexpr int64_t kDay = 86400;
  CertificateExpiry out;
  if (now < not_before) {
    out.state = CertificateExpiry::State::kNotYetValid;
    out.days = (not_before - now) / kDay;
  } else if (now > not_after) {
    out.state = CertificateExpiry::State::kExpired;
    out.days = (now - not_after) / kDay;
  } else {
    out.days = (not_after - now) / kDay;
    out.state = not_after - now <= static_cast<int64_t>(warning_days) * kDay
                    ? CertificateExpiry::State::kExpiresSoon
                    : CertificateExpiry::State::kFine;
  }
  return out;
}

std::string CertificateExpiryWarning(const CertificateInfo& info, const std::string& what,
                                     int64_t now, int warning_days) {
  CertificateExpiry e = CheckCertificateExpiry(info.not_before, info.not_after, now, warning_days);
  auto days = [](int64_t n) { return n == 1 ? std::string("1 day") : std::to_string(n) + " days"; };
  const std::string renew =
      "make a new one (`lockmesh cert node`, or `lockmesh cert self-signed` for tofu) and send "
      "the node SIGHUP";
  const std::string it = what + " " + info.subject;
  switch (e.state) {
    case CertificateExpiry::State::kFine:
      return "";
    case CertificateExpiry::State::kExpiresSoon:
      return it + " expires " + (e.days == 0 ? "in less than a day" : "in " + days(e.days)) +
             ", on " + FormatUtc(info.not_after) + ": peers refuse it from then on; " + renew;
    case CertificateExpiry::State::kExpired:
      return it + " expired on " + FormatUtc(info.not_after) +
             (e.days == 0 ? std::string(" (less than a day ago)") : " (" + days(e.days) + " ago)") +
             ": peers refuse it; " + renew;
    case CertificateExpiry::State::kNotYetValid:
      return it + " is not valid before " + FormatUtc(info.not_before) +
             (e.days == 0 ? std::string(" (less than a day from now)")
                          : " (" + days(e.days) + " from now)") +
             ": peers refuse it until then (is this host's clock right?)";
  }
  return "";
}

std::string FormatUtc(int64_t t) { return core::FormatUtcText(t); }

CertificateInfo InspectCertificate(const mbedtls_x509_crt& crt) {
  CertificateInfo info;
  info.subject =
      PrintGrowing([&](char* b, size_t n) { return mbedtls_x509_dn_gets(b, n, &crt.subject); });
  info.issuer =
      PrintGrowing([&](char* b, size_t n) { return mbedtls_x509_dn_gets(b, n, &crt.issuer); });
  for (const mbedtls_x509_name* name = &crt.subject; name != nullptr; name = name->next) {
    if (name->oid.p != nullptr && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &name->oid) == 0) {
      info.common_name.assign(reinterpret_cast<const char*>(name->val.p), name->val.len);
      info.common_names.push_back(info.common_name);
    }
  }
  for (const mbedtls_x509_sequence* san = &crt.subject_alt_names; san != nullptr; san = san->next) {
    if (san->buf.p != nullptr &&
        san->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME)) {
      info.dns_names.emplace_back(reinterpret_cast<const char*>(san->buf.p), san->buf.len);
    }
  }
  info.not_before = ToUnix(crt.valid_from);
  info.not_after = ToUnix(crt.valid_to);
  info.is_ca = crt.ca_istrue != 0;
  info.self_signed = crt.issuer_raw.len == crt.subject_raw.len &&
                     memcmp(crt.issuer_raw.p, crt.subject_raw.p, crt.subject_raw.len) == 0 &&
                     SignatureVerifiesWithOwnKey(crt);
  info.serial =
      PrintGrowing([&](char* b, size_t n) { return mbedtls_x509_serial_gets(b, n, &crt.serial); });
  info.key_type = KeyType(crt.pk);
  info.signature = PrintGrowing([&](char* b, size_t n) {
    return mbedtls_x509_sig_alg_gets(b, n, &crt.sig_oid, crt.sig_pk, crt.sig_md, crt.sig_opts);
  });
  info.fingerprint = Fingerprint::OfDer(crt.raw.p, crt.raw.len);
  return info;
}

// ------------------------------------------------------------------------------ loading

void CertificateChain::Free::operator()(mbedtls_x509_crt* crt) const {
  mbedtls_x509_crt_free(crt);
  delete crt;
}

CertificateChain::CertificateChain() : crt_(new mbedtls_x509_crt) {
  mbedtls_x509_crt_init(crt_.get());
}
CertificateChain::~CertificateChain() = default;

CertificateChain::CertificateChain(CertificateChain&& other) noexcept
    : crt_(std::move(other.crt_)), count_(other.count_) {
  other.crt_.reset(new mbedtls_x509_crt);
  mbedtls_x509_crt_init(other.crt_.get());
  other.count_ = 0;
}

CertificateChain& CertificateChain::operator=(CertificateChain&& other) noexcept {
  if (this != &other) {
    crt_.swap(other.crt_);
    std::swap(count_, other.count_);
  }
  return *this;
}

Status CertificateChain::Parse(std::string_view pem_or_der, const std::string& origin,
                               CertificateChain* out) {
  CertificateChain chain;
  std::string data(pem_or_der);
  size_t len = data.size();
  // PEM input must be NUL-terminated, with the NUL counted in the length.
  if (data.find("-----BEGIN") != std::string::npos) len += 1;
  int rc = mbedtls_x509_crt_parse(chain.crt_.get(),
                                  reinterpret_cast<const unsigned char*>(data.c_str()), len);
  if (rc < 0) {
    std::string hint;
    if (data.find("PRIVATE KEY-----") != std::string::npos) hint = " (it holds a private key)";
    return Status::InvalidArgument(origin + " holds no readable certificate" + hint + ": " +
                                   MbedError(rc));
  }
  if (rc > 0) {
    return Status::InvalidArgument(origin + ": " + std::to_string(rc) +
                                   " certificate(s) in it could not be parsed");
  }
  for (const mbedtls_x509_crt* c = chain.crt_.get(); c != nullptr && c->raw.p != nullptr;
       c = c->next) {
    ++chain.count_;
  }
  if (chain.count_ == 0) return Status::InvalidArgument(origin + " holds no certificate");
  *out = std::move(chain);
  return Status::OK();
}

Status CertificateChain::Load(const std::string& path, CertificateChain* out) {
  std::string data;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("certificate file " + path + " does not exist");
    return Status::IOError(ErrnoMessage("cannot open certificate file " + path, errno));
  }
  char buffer[8192];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) data.append(buffer, static_cast<size_t>(n));
    if (data.size() > (1u << 20)) break;
  }
  int saved = errno;
  close(fd);
  if (n < 0) {
    errno = saved;
    return Status::IOError(ErrnoMessage("cannot read certificate file " + path, errno));
  }
  if (data.size() > (1u << 20)) return Status::InvalidArgument(path + " is larger than 1 MiB");
  return Parse(data, path, out);
}

std::vector<CertificateInfo> CertificateChain::Inspect() const {
  std::vector<CertificateInfo> infos;
  for (const mbedtls_x509_crt* c = crt_.get(); c != nullptr && c->raw.p != nullptr; c = c->next) {
    infos.push_back(InspectCertificate(*c));
  }
  return infos;
}

void PrivateKey::Free::operator()(mbedtls_pk_context* pk) const {
  mbedtls_pk_free(pk);
  delete pk;
}

PrivateKey::PrivateKey() : pk_(new mbedtls_pk_context) { mbedtls_pk_init(pk_.get()); }
PrivateKey::~PrivateKey() = default;

PrivateKey::PrivateKey(PrivateKey&& other) noexcept
    : pk_(std::move(other.pk_)), loaded_(other.loaded_) {
  other.pk_.reset(new mbedtls_pk_context);
  mbedtls_pk_init(other.pk_.get());
  other.loaded_ = false;
}

PrivateKey& PrivateKey::operator=(PrivateKey&& other) noexcept {
  if (this != &other) {
    pk_.swap(other.pk_);
    std::swap(loaded_, other.loaded_);
  }
  return *this;
}

Status PrivateKey::Parse(std::string_view pem_or_der, const std::string& origin, PrivateKey* out) {
  PrivateKey key;
  std::string data(pem_or_der);
  size_t len = data.size();
  if (data.find("-----BEGIN") != std::string::npos) len += 1;
  int rc = mbedtls_pk_parse_key(key.pk_.get(), reinterpret_cast<const unsigned char*>(data.c_str()),
                                len, nullptr, 0);
  mbedtls_platform_zeroize(data.data(), data.size());
  if (rc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
    return Status::InvalidArgument(origin +
                                   " is protected by a passphrase, which lockmesh cannot ask for "
                                   "(write it unencrypted with `openssl pkey -in OLD -out NEW`)");
  }
  if (rc != 0) {
    std::string hint;
    if (data.find("CERTIFICATE-----") != std::string::npos) hint = " (it holds a certificate)";
    return Status::InvalidArgument(origin + " holds no readable private key" + hint + ": " +
                                   MbedError(rc));
  }
  key.loaded_ = true;
  *out = std::move(key);
  return Status::OK();
}

Status PrivateKey::Load(const std::string& path, PrivateKey* out) {
  if (!Exists(path)) return Status::NotFound("private key file " + path + " does not exist");
  if (access(path.c_str(), R_OK) != 0) {
    return Status::IOError(ErrnoMessage("cannot read private key file " + path, errno));
  }
  PrivateKey key;
  int rc = mbedtls_pk_parse_keyfile(key.pk_.get(), path.c_str(), nullptr);
  if (rc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
    return Status::InvalidArgument(path +
                                   " is protected by a passphrase, which lockmesh cannot ask for "
                                   "(write it unencrypted with `openssl pkey -in OLD -out NEW`)");
  }
  if (rc != 0) {
    return Status::InvalidArgument(path + " holds no readable private key: " + MbedError(rc));
  }
  key.loaded_ = true;
  *out = std::move(key);
  return Status::OK();
}

Status CheckKeyMatchesCertificate(const CertificateChain& cert, const PrivateKey& key) {
  if (cert.empty() || key.empty())
    return Status::InvalidArgument("no certificate or no key loaded");
  int rc = mbedtls_pk_check_pair(&cert.leaf().pk, key.get());
  if (rc != 0) {
    CertificateInfo info = InspectCertificate(cert.leaf());
    return Status::InvalidArgument("the private key does not belong to the certificate (" +
                                   info.subject + ")");
  }
  return Status::OK();
}

// ------------------------------------------------------------------------------ generation

void DefaultValidity(int64_t now, int days, CertificateSpec* spec) {
  spec->not_before = now - 3600;
  spec->not_after = now + static_cast<int64_t>(days) * 86400;
}

Status GenerateCertificate(const CertificateSpec& spec, const CertificateChain* issuer_cert,
                           const PrivateKey* issuer_key, PemPair* out) {
  std::string not_before, not_after;
  MESH_RETURN_IF_ERROR(ValidateSpec(spec, &not_before, &not_after));
  bool signed_by_ca = spec.kind == CertificateKind::kNode;
  if (signed_by_ca) {
    if (issuer_cert == nullptr || issuer_key == nullptr || issuer_cert->empty() ||
        issuer_key->empty()) {
      return Status::InvalidArgument("a node certificate needs a CA certificate and key");
    }
    if (!issuer_cert->leaf().ca_istrue) {
      return Status::InvalidArgument("the issuing certificate (" +
                                     InspectCertificate(issuer_cert->leaf()).subject +
                                     ") is not a CA (basicConstraints CA:FALSE)");
    }
    MESH_RETURN_IF_ERROR(CheckKeyMatchesCertificate(*issuer_cert, *issuer_key));
  } else if (issuer_cert != nullptr || issuer_key != nullptr) {
    return Status::InvalidArgument("a CA or self-signed certificate is signed by its own key");
  }
  MESH_RETURN_IF_ERROR(InitTlsRandom());

  Generation g;
  auto fail = [](const char* what, int rc) {
    return Status::Internal(std::string(what) + ": " + MbedError(rc));
  };
  int rc = mbedtls_pk_setup(&g.key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
  if (rc != 0) return fail("cannot set up the key", rc);
  rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(g.key), TlsRandom,
                           TlsRandomContext());
  if (rc != 0) return fail("cannot generate an EC P-256 key", rc);

  mbedtls_x509write_cert* w = &g.writer;
  mbedtls_x509write_crt_set_version(w, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(w, MBEDTLS_MD_SHA256);
  mbedtls_x509write_crt_set_subject_key(w, &g.key);
  mbedtls_x509write_crt_set_issuer_key(
      w, signed_by_ca ? const_cast<mbedtls_pk_context*>(issuer_key->get()) : &g.key);
  std::string subject = SubjectFor(spec.common_name);
  rc = mbedtls_x509write_crt_set_subject_name(w, subject.c_str());
  if (rc != 0)
    return Status::InvalidArgument("bad CN '" + spec.common_name + "': " + MbedError(rc));
  for (const std::string& cn : spec.extra_common_names) {
    MESH_RETURN_IF_ERROR(AppendSubjectCommonName(cn, w));
  }
  if (signed_by_ca) {
    MESH_RETURN_IF_ERROR(CopyIssuerName(&issuer_cert->leaf().subject, w));
  } else {
    rc = mbedtls_x509write_crt_set_issuer_name(w, subject.c_str());
    if (rc != 0) return fail("cannot set the issuer", rc);
  }
  unsigned char serial[16];
  rc = TlsRandom(TlsRandomContext(), serial, sizeof serial);
  if (rc != 0) return fail("cannot draw a serial number", rc);
  serial[0] &= 0x7f;  // positive
  serial[0] |= 0x40;  // and always 16 bytes long
  rc = mbedtls_mpi_read_binary(&g.serial, serial, sizeof serial);
  if (rc == 0) rc = mbedtls_x509write_crt_set_serial(w, &g.serial);
  if (rc != 0) return fail("cannot set the serial number", rc);
  rc = mbedtls_x509write_crt_set_validity(w, not_before.c_str(), not_after.c_str());
  if (rc != 0) return fail("cannot set the validity", rc);
  bool is_ca = spec.kind == CertificateKind::kCa;
  rc = mbedtls_x509write_crt_set_basic_constraints(w, is_ca ? 1 : 0, is_ca ? 0 : -1);
  if (rc != 0) return fail("cannot set basicConstraints", rc);
  rc = mbedtls_x509write_crt_set_subject_key_identifier(w);
  if (rc != 0) return fail("cannot set the subject key identifier", rc);
  rc = mbedtls_x509write_crt_set_authority_key_identifier(w);
  if (rc != 0) return fail("cannot set the authority key identifier", rc);
  unsigned key_usage = spec.key_usage != 0 ? spec.key_usage
                       : is_ca ? (MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN)
                               : MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
  rc = mbedtls_x509write_crt_set_key_usage(w, key_usage);
  if (rc != 0) return fail("cannot set keyUsage", rc);
  if (spec.extended_key_usage != 0) {
    std::string eku;
    MESH_RETURN_IF_ERROR(ExtendedKeyUsageDer(spec.extended_key_usage, &eku));
    rc = mbedtls_x509write_crt_set_extension(
        w, MBEDTLS_OID_EXTENDED_KEY_USAGE, MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
        /*critical=*/0, reinterpret_cast<const unsigned char*>(eku.data()), eku.size());
    if (rc != 0) return fail("cannot set extendedKeyUsage", rc);
  }
  if (!is_ca && IsIdLike(spec.common_name)) {
    std::string san;
    MESH_RETURN_IF_ERROR(SubjectAltNameDer(spec.common_name, &san));
    rc = mbedtls_x509write_crt_set_extension(
        w, MBEDTLS_OID_SUBJECT_ALT_NAME, MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
        /*critical=*/0, reinterpret_cast<const unsigned char*>(san.data()), san.size());
    if (rc != 0) return fail("cannot set subjectAltName", rc);
  }

  std::string cert_pem(8192, '\0');
  rc = mbedtls_x509write_crt_pem(w, reinterpret_cast<unsigned char*>(cert_pem.data()),
                                 cert_pem.size(), TlsRandom, TlsRandomContext());
  if (rc != 0) return fail("cannot sign the certificate", rc);
  cert_pem.resize(strlen(cert_pem.c_str()));
  std::string key_pem(4096, '\0');
  rc = mbedtls_pk_write_key_pem(&g.key, reinterpret_cast<unsigned char*>(key_pem.data()),
                                key_pem.size());
  if (rc != 0) return fail("cannot encode the private key", rc);
  key_pem.resize(strlen(key_pem.c_str()));
  out->cert_pem = std::move(cert_pem);
  out->key_pem = std::move(key_pem);
  return Status::OK();
}

// ------------------------------------------------------------------------------ files

Status WriteCertificateFiles(const std::string& dir, const PemPair& pair, bool overwrite) {
  if (dir.empty()) return Status::InvalidArgument("no output directory given");
  std::string cert_path = dir + "/" + kCertificateFileName;
  std::string key_path = dir + "/" + kPrivateKeyFileName;
  if (!overwrite) {
    for (const std::string& path : {cert_path, key_path}) {
      if (Exists(path)) {
        return Status::AlreadyExists(path + " already exists (use --force to replace it)");
      }
    }
  }
  MESH_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  MESH_RETURN_IF_ERROR(WriteFileWithMode(key_path, pair.key_pem, 0600, overwrite));
  Status st = WriteFileWithMode(cert_path, pair.cert_pem, 0644, overwrite);
  if (!st.ok()) {
    if (!overwrite) unlink(key_path.c_str());  // leave no key without its certificate
    return st;
  }
  return Status::OK();
}

Status LoadCertificateAuthority(const std::string& dir, CertificateChain* cert, PrivateKey* key) {
  std::string cert_path = dir + "/" + kCertificateFileName;
  std::string key_path = dir + "/" + kPrivateKeyFileName;
  CertificateChain chain;
  Status st = CertificateChain::Load(cert_path, &chain);
  if (st.IsNotFound()) {
    return Status::NotFound(cert_path + " does not exist (make a CA with `lockmesh cert ca --out " +
                            ShellQuote(dir) + "`)");
  }
  MESH_RETURN_IF_ERROR(st);
  if (!chain.leaf().ca_istrue) {
    return Status::InvalidArgument(cert_path +
                                   " is not a CA certificate (basicConstraints CA:FALSE)");
  }
  PrivateKey pk;
  MESH_RETURN_IF_ERROR(PrivateKey::Load(key_path, &pk));
  st = CheckKeyMatchesCertificate(chain, pk);
  if (!st.ok()) return Status::InvalidArgument(key_path + ": " + st.message());
  *cert = std::move(chain);
  *key = std::move(pk);
  return Status::OK();
}

std::string ShellQuote(std::string_view word) {
  bool plain = !word.empty();
  for (char c : word) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && (c == 0 || !strchr("_./:=@%+,-", c))) {
      plain = false;
    }
  }
  if (plain) return std::string(word);
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace mesh::net

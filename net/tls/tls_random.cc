// net/tls/tls_random.h: the process-wide CTR_DRBG and PSA initialisation (the only ones).
#include "net/tls/tls_random.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <psa/crypto.h>

#include <mutex>
#include <string>

namespace mesh::net {
namespace {

// Created on first use and never destroyed: static destructors of other objects may still
// hold TLS sessions that draw from it.
struct Random {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  Status status;
};

Random* TheRandom() {
  static std::once_flag once;
  static Random* random = nullptr;
  std::call_once(once, [] {
    random = new Random;
    mbedtls_entropy_init(&random->entropy);
    mbedtls_ctr_drbg_init(&random->drbg);
    psa_status_t ps = psa_crypto_init();
    if (ps != PSA_SUCCESS) {
      random->status = Status::Internal("psa_crypto_init failed (PSA status " +
                                        std::to_string(ps) + ")");
      return;
    }
    static const unsigned char kPersonalization[] = "lockmesh";
    int rc = mbedtls_ctr_drbg_seed(&random->drbg, mbedtls_entropy_func, &random->entropy,
                                   kPersonalization, sizeof kPersonalization - 1);
    if (rc != 0) {
      char text[160];
      mbedtls_strerror(rc, text, sizeof text);
      random->status = Status::Internal(std::string("cannot seed the random generator: ") + text);
    }
  });
  return random;
}

}  // namespace

Status InitTlsRandom() { return TheRandom()->status; }

int TlsRandom(void*, unsigned char* out, size_t len) {
  Random* random = TheRandom();
  if (!random->status.ok()) return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
  return mbedtls_ctr_drbg_random(&random->drbg, out, len);
}

void* TlsRandomContext() { return &TheRandom()->drbg; }

}  // namespace mesh::net

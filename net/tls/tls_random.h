// net/tls/tls_random: the one place where lockmesh sets up mbedTLS's random generator and PSA.
//
// docs/design.md §9: "keep RNG/PSA set-up in one file". Every mbedTLS call in lockmesh that needs
// randomness (key generation and certificate serials in net/tls/certificate.cc, TLS handshakes in
// net/tls_*.cc, tls-debug) passes TlsRandom / TlsRandomContext() as its f_rng / p_rng pair;
// nobody else seeds a CTR_DRBG or calls psa_crypto_init(). TLS engineer: use this file rather
// than a second DRBG (created by the certificate-tooling work because net/tls_* did not exist
// yet; extend it here if the TLS session needs more set-up).
//
// The generator is a process-wide CTR_DRBG (AES-256) seeded from mbedTLS's default entropy
// sources (getrandom / /dev/urandom), created on first use and never destroyed. mbedTLS is
// built with MBEDTLS_THREADING_PTHREAD on Debian, so the DRBG locks itself and TlsRandom may
// be called from any thread at once. After fork() the child must not use it (the child of
// `lockmesh lock` execs at once and never does).
#ifndef LOCKMESH_NET_TLS_TLS_RANDOM_H_
#define LOCKMESH_NET_TLS_TLS_RANDOM_H_

#include <cstddef>

#include "mesh/status.h"

namespace mesh::net {

/// Seeds the process-wide DRBG and initialises PSA crypto if that has not happened yet.
/// Idempotent and thread-safe (std::call_once). Returns an Internal status naming the mbedTLS
/// error when the entropy source fails; every later call returns the same status. Call it
/// once at start-up to fail early; TlsRandom also calls it.
Status InitTlsRandom();

/// mbedTLS f_rng callback: fills `out[0..len)` from the process-wide DRBG. `context` must be
/// TlsRandomContext() (it is ignored, and nullptr is accepted too). Returns 0, or a negative
/// mbedTLS error code if seeding failed. Thread-safe.
int TlsRandom(void* context, unsigned char* out, size_t len);

/// The p_rng to pass along with TlsRandom (the process-wide DRBG; owned by this module,
/// valid for the life of the process).
void* TlsRandomContext();

}  // namespace mesh::net

#endif  // LOCKMESH_NET_TLS_TLS_RANDOM_H_

// Package testpki is a deterministic, JPKI-shaped test public key
// infrastructure: three generations of self-signed "user authentication" and
// "digital signature" root CAs, end-entity certificates with the J-LIS
// profile, revoked certificates and CRLs (full and delta), and the broken
// certificates the validation tests need.
//
// It is virtual hardware (drivers/sim): the simulated cards carry its
// certificates and keys, and the daemon's tests validate against it. Nothing
// in the production stack imports it.
//
// # Profile
//
// The hierarchy copies the shape of the production JPKI (docs/jpki.md §7):
//
//   - One subject DN per CA type, identical across generations, so a chain
//     builder has to pick the issuer by key (SKI/AKI, then signatures):
//     C=JP, O=JPKI-TEST, OU=JPKI TEST for user authentication, OU=kazasu test hierarchy
//     C=JP, O=JPKI-TEST, OU=JPKI TEST for digital signature, OU=kazasu test hierarchy
//     The names say TEST: production J-LIS names are never used.
//   - Roots: RSA-2048, sha256WithRSAEncryption, keyUsage critical
//     keyCertSign+cRLSign, basicConstraints critical CA:TRUE without a path
//     length, subjectAltName and cRLDistributionPoints as directory names,
//     SKI, no AKI. Validity modelled on the production generations
//     (2015-10-20 → 2025-10-19, 2019-09-14 → 2029-09-14,
//     2023-07-16 → 2033-07-15, all ending 23:59:59 JST).
//   - End entities are issued directly by the roots: RSA-2048,
//     sha256WithRSAEncryption, keyUsage critical digitalSignature (auth) or
//     digitalSignature+nonRepudiation (sign), certificatePolicies
//     1.2.392.200149.8.5.1.3.30 (auth) or 1.2.392.200149.8.5.1.1.20 (sign),
//     issuerAltName as a directory name, the auth subject C=JP, CN=<opaque id>
//     with no personal data, the sign certificate's personal data as
//     subjectAltName otherNames 1.2.392.200149.8.5.5.1 … .6 (UTF8String), and
//     validity from issuance to the 5th birthday after issuance, 23:59:59 JST,
//     capped by the card expiry and by the issuing root's own expiry.
//
// # Determinism
//
// Go's crypto/rsa ignores caller-supplied randomness, so keys are derived
// here: an HMAC-SHA256 counter-mode generator seeded by (seed, label) yields
// candidate 1024-bit primes tested with big.Int.ProbablyPrime(20). RSA
// PKCS#1 v1.5 signatures are deterministic, so the same seed gives
// byte-identical certificates, CRLs and keys. Keys are cached per
// (seed, label) in the process, because prime search takes a noticeable
// fraction of a second.
//
// These keys are for tests only: the derivation is public and the seed is
// the whole secret.
//
// # Scale
//
// [Hierarchy.WriteLargeCRL] streams a signed CRL of any size (entries are
// produced on demand and the TBS is hashed as it is written);
// [Hierarchy.BenchCRL] caches the national-scale benchmark CRL of
// [BenchSerial] in a directory.
package testpki

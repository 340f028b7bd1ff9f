// Package pki validates JPKI certificates for the kiosk: the trust store of
// J-LIS root CAs, chain building among same-name root generations,
// validity against a trusted clock, key usage, certificate policies,
// revocation and the card's challenge signature, with typed verdicts.
//
// Place in the stack: daemon (rank 90). It uses daemon/revocation for
// revocation status; the session layer calls [Validator.Validate] once per
// transaction.
//
// # Profile (docs/jpki.md §7)
//
// JPKI end-entity certificates are issued directly by self-signed root
// CAs; each CA type (user authentication 利用者証明用, digital signature
// 署名用) has one subject DN for all its generations, so the issuer is
// chosen by key: the root whose SKI equals the certificate's AKI, or, when
// the certificate has no AKI, every same-name root's key in turn (RFC 5280
// §4.2.1.1; crypto/x509 and OpenSSL behave the same). A certificate whose
// AKI names a root whose key does not verify it is a bad signature, even
// if another generation's key would verify it.
//
// The trust store embeds the public J-LIS roots (user authentication
// generations 1 and 3, digital signature generations 1–3; their published
// SHA-256 fingerprints are checked at start). Generation 2 of the user-authentication CA is
// not public here and must be added by the operator with its SHA-256
// fingerprint ([TrustStore.AddPinnedFile]). Test roots (O=JPKI-TEST) are
// usable only in test mode; in production a chain ending in one is
// refused with [ReasonTestRootInProduction].
//
// Checks and their reasons:
//
//   - parsing: [ReasonMalformed];
//   - chain: [ReasonUnknownIssuer], [ReasonBadSignature],
//     [ReasonTestRootInProduction];
//   - time: a [Clock] reading that is not synchronised, or whose
//     uncertainty exceeds the bound, gives [ReasonClockUnsynchronised];
//     otherwise the certificate and its root must be valid over the whole
//     interval [t-u, t+u] ([ReasonExpired], [ReasonNotYetValid]);
//   - type: the issuing CA's type must be the expected one
//     ([ReasonWrongCertType]); a CA certificate is never an end entity;
//   - key usage, exactly as profiled: digitalSignature (auth),
//     digitalSignature+nonRepudiation (sign) ([ReasonWrongKeyUsage]);
//     RSA of at least 2048 bits ([ReasonWeakKey]);
//   - policy: the auth class policy 1.2.392.200149.8.5.1.3.30 (auth) or
//     the sign class 1.2.392.200149.8.5.1.1.20 (sign) must be present
//     ([ReasonWrongPolicy]); other OIDs, including unknown ones under
//     1.2.392.200149.8.5.1 (reported phone-certificate classes), are kept
//     as data in the verdict and never fail it;
//   - revocation: [ReasonRevoked], [ReasonCRLStale] (fail closed),
//     [ReasonRevocationUnknown];
//   - the challenge: PKCS#1 v1.5 over DigestInfo(SHA-256(challenge)), what
//     the card computes for COMPUTE DIGITAL SIGNATURE 80 2A 00 80 with a
//     caller-built DigestInfo (docs/jpki.md §5.2)
//     ([ReasonBadChallengeSignature]).
//
// All applicable reasons are reported, not only the first, so that an
// operator sees, say, both "expired" and "revoked".
package pki

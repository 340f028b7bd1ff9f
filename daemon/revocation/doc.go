// Package revocation keeps the kiosk's view of JPKI certificate revocation:
// CRLs (RFC 5280 §5) are ingested as a stream into a compact, exact,
// on-disk revocation set keyed by issuer key and serial number, with
// freshness from thisUpdate/nextUpdate, delta CRLs (RFC 5280 §5.2.4)
// applied over their base (the newest delta replaces the previous one:
// deltas are cumulative from the base), and an online status hook (OCSP, RFC 6960, or
// the issuance service's status endpoint) for when the CRL is stale.
//
// Place in the stack: daemon (rank 90). daemon/pki consumes the Checker;
// the kazasu CLI imports CRLs with `kazasu crl import`.
//
// # Scale
//
// The set is planned for 10 million revoked serials. A CRL is never held in
// memory: [Ingest] walks revokedCertificates entry by entry with its own
// bounds-checked DER reader over an io.Reader (a 256 KiB window), hashes the
// tbsCertList bytes as they pass (on a second goroutine, fed copies of each
// read) and checks the signature at the end; nothing is committed when the
// signature (or anything else) is wrong.
//
// `kazasu crl bench` measures, each in its own process, against
// crypto/x509.ParseRevocationList on the same generated 10-million-entry
// CRL (271 MB). On the 2-core development VM (2026-11-21, load average
// 15–19, so CPU time is the fair measure) five runs gave: ingest
// 1.1–1.8 s CPU against 12.8–19.9 s (11.3–13.8× less CPU, 11–23× less
// wall time), peak RSS 164–173 MiB against 4.9–5.9 GiB (≈ 0.03), 6.12
// bytes per entry, store load 0.1 s CPU, lookup 280–310 ns cold (1.5–1.8×
// that machine's 157–186 ns dependent-load latency) and 110–130 ns warm.
//
// The set stores, per issuer, one segment per (serial length, serial bytes
// before the last eight). Each segment holds the last eight bytes of its
// serials as sorted integers, bucketed by their high bits: a bucket offset
// table plus fixed-width low parts, so that lookup is one bucket and a
// short interpolation search and storage is a few bytes per entry. Every serial is
// stored whole (prefix + bucket + low part): lookups are exact, there are no
// false positives. Serials with at most 64 significant bits cost 8 bytes or
// less per entry (random 63-bit serials ≈ 6.1 bytes at 10M; sequential
// serials ≈ 1 byte); longer serials sharing their high bytes are as cheap, but
// long serials that are random in every byte cannot be stored exactly below
// their own entropy and cost about their length each.
//
// # Trust
//
// CRL signatures are checked against the issuer candidates the caller
// passes (the trust store's roots). Because JPKI root generations share one
// DN, the issuer is chosen by the CRL's authorityKeyIdentifier among
// same-DN candidates, falling back to trying each candidate's key. Entries
// are keyed by [IssuerID], the SHA-256 of the issuer's SubjectPublicKeyInfo,
// never by name.
//
// The store file's CRC-32C detects accidental corruption; it is not a
// security mechanism (the file is written only by this process, and its
// content came from signature-checked CRLs).
package revocation

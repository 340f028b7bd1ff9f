// Package jpki is the JPKI card application (公的個人認証サービス, the Japanese
// public individual authentication service) on My Number Cards and on phones
// carrying the JPKI certificate (Android GP-SE applet, iPhone Wallet), as a
// kiosk terminal needs it for user authentication (利用者証明).
//
// # Place in the stack
//
//	daemon → jpki → apdu → ISO-DEP → activation → chip driver → transport
//
// It talks to an activated ISO-DEP target (nfc.Card) through ISO 7816-4
// APDUs (drivers/apdu) and returns raw DER and signatures: it validates
// nothing (daemon/pki does).
//
// # What it does (../shared/docs/jpki.md §2–§8)
//
//   - Open selects the JPKI AP (D3 92 F0 00 26 01 00 00 00 01) and identifies
//     the token from EF 0006: JPKIAPICCTOKEN2 (card), JPKIAPGPSETOKEN
//     (Android), JPKIAPIOSTOKEN (iPhone). The old Juki card (JPKIAPICCTOKEN)
//     and anything that is not JPKI are refused with typed errors. Tokens are
//     identified by AID and label, never by ATR/ATQB (jpki.md §1).
//   - ReadAuthCert reads EF 000A with its length taken from the DER header,
//     in one extended READ BINARY where the path and token take it, else in
//     frame-sized chunks (iso14443b.md §7).
//   - AuthPINStatus reads the retry counter with an empty VERIFY, which
//     spends no try (63Cx; 63C0/6983/6984 = blocked).
//   - VerifyAuthPIN enforces the safety rules: it always reads the counter
//     first, never sends VERIFY to a blocked PIN, refuses with one try left
//     unless the caller passes the user's explicit confirmation, sends VERIFY
//     exactly once and never retries it.
//   - SignAuth selects the auth key (0017) and sends COMPUTE DIGITAL
//     SIGNATURE 80 2A 00 80 with a caller-supplied DigestInfo (the card pads
//     PKCS#1 v1.5 type 1, jpki.md §5.2).
//   - Phones: Android needs the PIN before its certificate is readable
//     (Session.PINBeforeCert); an iPhone must be armed (Face ID) before the
//     tap, and an unarmed one is reported as ErrNotArmed.
//   - Close clears the security state: the last-command indicator
//     80 FC 00 00 on iPhones, then a SELECT of the GlobalPlatform ISD.
//   - ReadBasic4 (opt-in, text AP, its own PIN 0011) reads name, address,
//     date of birth and sex for form prefill.
//
// No PIN ever leaves this package except inside the VERIFY APDU; command
// buffers holding a PIN are zeroed after use, and traces below redact VERIFY
// bodies (nfc.RedactVerify).
package jpki

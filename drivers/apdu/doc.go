// Package apdu is the ISO/IEC 7816-4 layer of kazasu: command and response
// APDUs, status words, and the BER-TLV data objects the card applications
// return.
//
//   - [Command] encodes and [ParseCommand] decodes command APDUs of every
//     case of ISO/IEC 7816-4 §5.1 (1, 2S, 3S, 4S, 2E, 3E, 4E); the short or
//     extended length form is chosen automatically or forced.
//   - [Response] splits the response data from SW1 SW2 (§5.1.3). A status
//     other than 9000 becomes a [*StatusError], which unwraps to a kind to
//     branch on with errors.Is ([ErrNotFound], [ErrSecurityStatus], …) or
//     to a [*PINError] for 63Cx; [Describe] names any status word (§5.6,
//     JICSAP usage as in jpki.md §5.4).
//   - [Transmit] sends a command over an [nfc.Card] and handles 61xx (GET
//     RESPONSE, bounded) and 6Cxx (re-issue once with the right Le);
//     [ReadBinary] reads a transparent EF in chunks with 15-bit offsets
//     (§11.2.3), [ReadBinarySFI] in the short-EF-identifier form.
//   - [TLVReader] is a bounds-checked cursor over BER-TLV data objects
//     (ISO/IEC 7816-4 §5.2, ISO/IEC 8825-1): multi-byte tags such as DF21 or
//     FF20, long-form lengths, no indefinite lengths.
//
// Nothing here panics on hostile bytes; the parsers are fuzzed.
//
// # Place in the stack
//
//	jpki → apdu → (nfc.Card: isodep over a chip driver, or a chip's own ISO-DEP)
//
// apdu imports only drivers/nfc. It knows nothing of PINs beyond status
// words and never logs; tracing and redaction are the Card's business
// (nfc.RedactVerify).
package apdu

// Package libnfctest holds the acceptance tests of the PN532 emulator
// against the judge: Debian's libnfc 1.8.0. The tests start the emulator on
// a pseudo-terminal in-process and run libnfc's own tools (nfc-scan-device,
// nfc-list, nfc-poll) against it with LIBNFC_DEVICE=pn532_uart:PATH; under
// the libnfc build tag (cgo) a Go test drives it through
// github.com/clausecker/nfc/v2 and runs the JPKI user-authentication APDU
// sequence of docs/jpki.md §5.5 against the simulated My Number Card.
//
// A test that needs a tool skips when the tool is missing, unless
// KAZASU_REQUIRE_TOOLS=1 (set by tools/scripts/test.sh), where it fails.
package libnfctest

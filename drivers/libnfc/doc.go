// Package libnfc is the kazasu reader backend for readers driven by libnfc
// (https://github.com/nfc-tools/libnfc, Debian's libnfc6 1.8.0) through the Go
// binding github.com/clausecker/nfc/v2 v2.2.0. It lets labs and developers use
// any reader libnfc knows (pn53x_usb, acr122_usb, pn532_uart, pn532_i2c,
// pn532_spi, ...) behind the kazasu reader contract (drivers/nfc).
//
// # Place in the stack
//
// A chip-level driver (rank 20): it implements nfc.Reader and nfc.Card, with
// ISO-DEP run by libnfc and the reader chip (libnfc's "easy framing" and
// automatic ISO14443-4 mode).
//
// # Build
//
// The backend needs cgo and libnfc-dev and is only compiled with the build tag
// libnfc (go build -tags libnfc). Without the tag, or with CGO_ENABLED=0,
// Open returns an error wrapping nfc.ErrNotSupported, so the default pure-Go
// build and cross-compiles stay whole. libnfc and the binding are LGPL-3.0:
// the backend links libnfc6 dynamically and is kept out of firmware images.
//
// # libnfc and binding pitfalls handled here
//
// From ../shared/docs/deps.md §1a and pn532.md §10:
//   - InitiatorSelectPassiveTarget panics in the binding when libnfc finds
//     nothing (it decodes a zeroed target): the call is guarded and turned into
//     nfc.ErrNoTarget.
//   - InitiatorDeselectTarget reports libnfc's positive byte count as
//     nfc.Error(1): positive values are success.
//   - InitiatorTransceiveBytes indexes tx[0] and rx[0]: empty APDUs are refused
//     before the call.
//   - ListDevices strings end in a NUL byte: trimmed.
//   - The binding's Device is not goroutine-safe and every call blocks an OS
//     thread: each Reader serialises its calls, and context cancellation is
//     turned into AbortCommand from another goroutine.
//   - libnfc waits forever in InListPassiveTarget with NP_INFINITE_SELECT on:
//     it is switched off at open, so a poll cycle ends.
//   - libnfc limits a command APDU to 262 bytes (no host→card chaining on
//     PN53x): longer APDUs are refused with nfc.ErrNotSupported.
package libnfc

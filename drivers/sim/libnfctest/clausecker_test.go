//go:build cgo && libnfc

package libnfctest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"

	"github.com/clausecker/nfc/v2"

	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/pn532emu"
	"kazasu/drivers/sim/rf"
	"kazasu/drivers/sim/scenario"
)

// selectB selects a Type B target; clausecker/nfc panics when libnfc finds
// nothing (pn532.md §10 (a)), so the panic is turned into an error.
func selectB(d nfc.Device) (t nfc.Target, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("InitiatorSelectPassiveTarget panicked (no target): %v", r)
		}
	}()
	return d.InitiatorSelectPassiveTarget(nfc.Modulation{Type: nfc.ISO14443b, BaudRate: nfc.Nbr106}, []byte{0x00})
}

// apdu sends one APDU through libnfc (InDataExchange, MI reassembly by
// libnfc) and returns the response.
func apdu(t *testing.T, d nfc.Device, cmd []byte) []byte {
	t.Helper()
	if len(cmd) == 0 {
		t.Fatal("empty APDU: clausecker/nfc would panic")
	}
	rx := make([]byte, 264)
	n, err := d.InitiatorTransceiveBytes(cmd, rx, 5000)
	if err != nil {
		// Never print cmd itself: it may be a VERIFY.
		t.Fatalf("APDU %02X %02X: %v", cmd[0], cmd[1], err)
	}
	return rx[:n]
}

func sw(r []byte) uint16 {
	if len(r) < 2 {
		return 0
	}
	return uint16(r[len(r)-2])<<8 | uint16(r[len(r)-1])
}

func openDevice(t *testing.T, r *rig) nfc.Device {
	t.Helper()
	t.Setenv("LIBNFC_LOG_LEVEL", "0")
	d, err := nfc.Open("pn532_uart:" + r.Link)
	if err != nil {
		t.Fatalf("nfc.Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.InitiatorInit(); err != nil {
		t.Fatalf("InitiatorInit: %v", err)
	}
	return d
}

// TestClauseckerJPKIUserAuthentication drives the emulator through libnfc
// with the simulated My Number Card in the field and runs the user
// authentication sequence of jpki.md §5.5.
func TestClauseckerJPKIUserAuthentication(t *testing.T) {
	tok, err := card.New(card.KindMyNumber, card.Options{Seed: "libnfctest"})
	if err != nil {
		t.Fatal(err)
	}
	f := &rf.Field{}
	f.Add(tok)
	rg := start(t, f, pn532emu.Options{})
	d := openDevice(t, rg)

	info, err := d.Information()
	if err != nil || !bytes.Contains([]byte(info), []byte("chip: PN532 v1.6")) {
		t.Fatalf("Information: %q, %v", info, err)
	}
	targets, err := d.InitiatorListPassiveTargets(nfc.Modulation{Type: nfc.ISO14443b, BaudRate: nfc.Nbr106})
	if err != nil || len(targets) != 1 {
		t.Fatalf("InitiatorListPassiveTargets: %d targets, %v", len(targets), err)
	}
	b, ok := targets[0].(*nfc.ISO14443bTarget)
	if !ok {
		t.Fatalf("target is %T", targets[0])
	}
	if b.ProtocolInfo != [3]byte{0xB3, 0x81, 0xA1} || b.CardIdentifier&0x0F != 1 || !bytes.Equal(b.Pupi[:], tok.ID()) {
		t.Fatalf("target: PUPI % X (card % X), protocol info % X, CID byte %02X", b.Pupi, tok.ID(), b.ProtocolInfo, b.CardIdentifier)
	}
	// Listing leaves nothing selected (pitfall 2): select before APDUs.
	if _, err := selectB(d); err != nil {
		t.Fatal(err)
	}

	// 1. SELECT the JPKI AP.
	if r := apdu(t, d, []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01}); sw(r) != 0x9000 {
		t.Fatalf("SELECT JPKI AP: % X", r)
	}
	// 2. Token EF 0006.
	if r := apdu(t, d, []byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x06}); sw(r) != 0x9000 {
		t.Fatalf("SELECT 0006: % X", r)
	}
	if r := apdu(t, d, []byte{0x00, 0xB0, 0x00, 0x00, 0x20}); sw(r) != 0x9000 || !bytes.HasPrefix(r, []byte("JPKIAPICCTOKEN2 ")) {
		t.Fatalf("token label: %q", r)
	}
	// 3. Auth certificate EF 000A, read by its DER length in ≤ 256-byte chunks.
	if r := apdu(t, d, []byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A}); sw(r) != 0x9000 {
		t.Fatalf("SELECT 000A: % X", r)
	}
	hd := apdu(t, d, []byte{0x00, 0xB0, 0x00, 0x00, 0x04})
	if sw(hd) != 0x9000 || len(hd) != 6 || hd[0] != 0x30 || hd[1] != 0x82 {
		t.Fatalf("certificate header: % X", hd)
	}
	total := int(hd[2])<<8 | int(hd[3]) + 4
	var der []byte
	for len(der) < total {
		n := min(256, total-len(der))
		off := len(der)
		r := apdu(t, d, []byte{0x00, 0xB0, byte(off >> 8), byte(off), byte(n)}) // Le 00 = 256
		if sw(r) != 0x9000 || len(r)-2 != n {
			t.Fatalf("READ BINARY at %d: %d bytes, SW %04X", off, len(r)-2, sw(r))
		}
		der = append(der, r[:n]...)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("auth certificate (%d bytes): %v", len(der), err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("certificate key is %T", cert.PublicKey)
	}
	// 4. PIN EF 0018: retry counter without using a try.
	if r := apdu(t, d, []byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x18}); sw(r) != 0x9000 {
		t.Fatalf("SELECT 0018: % X", r)
	}
	if r := apdu(t, d, []byte{0x00, 0x20, 0x00, 0x80}); sw(r) != 0x63C3 {
		t.Fatalf("retry counter: % X, want 63C3", r)
	}
	// 5. VERIFY with the simulated card's test PIN.
	if r := apdu(t, d, append([]byte{0x00, 0x20, 0x00, 0x80, 0x04}, "1234"...)); sw(r) != 0x9000 {
		t.Fatalf("VERIFY: SW %04X", sw(r))
	}
	// 6. Key EF 0017 and COMPUTE DIGITAL SIGNATURE over DigestInfo(SHA-256(challenge)).
	if r := apdu(t, d, []byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x17}); sw(r) != 0x9000 {
		t.Fatalf("SELECT 0017: % X", r)
	}
	challenge := make([]byte, 32)
	if _, err := rand.Read(challenge); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(challenge)
	di := append([]byte{0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}, h[:]...)
	cmd := append(append([]byte{0x80, 0x2A, 0x00, 0x80, byte(len(di))}, di...), 0x00)
	sig := apdu(t, d, cmd)
	if sw(sig) != 0x9000 || len(sig) != 258 {
		t.Fatalf("COMPUTE DIGITAL SIGNATURE: %d bytes, SW %04X", len(sig), sw(sig))
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig[:256]); err != nil {
		t.Fatalf("signature does not verify against the certificate: %v", err)
	}

	// Presence, then deselect: Error 1 from InitiatorDeselectTarget is success
	// (pitfall 1).
	if err := d.InitiatorTargetIsPresent(nil); err != nil {
		t.Fatalf("InitiatorTargetIsPresent with the card in the field: %v", err)
	}
	if err := d.InitiatorDeselectTarget(); err != nil {
		var ne nfc.Error
		if !errors.As(err, &ne) || ne <= 0 {
			t.Fatalf("InitiatorDeselectTarget: %v", err)
		}
	}
	t.Logf("modelled time: %v", rg.Emu.Meter())
}

// TestClauseckerNoCard: with nothing in the field a single-shot list finds
// nothing, and a select is refused without hanging (libnfc's 300 ms
// timeout against the chip's infinite retries) or panics that are guarded.
func TestClauseckerNoCard(t *testing.T) {
	r := start(t, &rf.Field{}, pn532emu.Options{})
	d := openDevice(t, r)
	targets, err := d.InitiatorListPassiveTargets(nfc.Modulation{Type: nfc.ISO14443b, BaudRate: nfc.Nbr106})
	if err != nil || len(targets) != 0 {
		t.Fatalf("list with an empty field: %v, %v", targets, err)
	}
	if _, err := selectB(d); err == nil {
		t.Fatal("select found a target in an empty field")
	}
	// libnfc gave up after 300 ms without aborting the chip, which still
	// polls (MxRtyPassiveActivation FF). A card tapped now would draw a late
	// answer, as on a real PN532; the next command cancels the poll, so
	// send one first (single-shot selects from now on).
	if err := d.SetPropertyBool(nfc.InfiniteSelect, false); err != nil {
		t.Fatal(err)
	}
	tok, err := card.New(card.KindMyNumber, card.Options{Seed: "libnfctest"})
	if err != nil {
		t.Fatal(err)
	}
	r.Field.Add(tok)
	if _, err := selectB(d); err != nil {
		t.Fatalf("after the tap: %v", err)
	}
	if r := apdu(t, d, []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01}); sw(r) != 0x9000 {
		t.Fatalf("SELECT JPKI AP: % X", r)
	}
}

// TestClauseckerFaults runs a scenario's card faults and an injected
// host-link fault through libnfc: a WTX storm is invisible to the host
// (the chip answers the S(WTX) requests), an error status word comes back
// as an ordinary answer, a corrupted frame checksum is an I/O error for
// libnfc, and a card pulled before an APDU is an RF error.
func TestClauseckerFaults(t *testing.T) {
	script, err := scenario.ParseString(`
card mynumber seed=libnfctest
tap
fault wtx apdu=2 count=30
fault sw apdu=3 sw=6A82
fault remove apdu=6
`)
	if err != nil {
		t.Fatal(err)
	}
	f := &rf.Field{}
	factory := func(kind string, kv []scenario.KeyValue) (rf.PICC, error) {
		k, err := card.ParseKind(kind)
		if err != nil {
			return nil, err
		}
		var o card.Options
		for _, p := range kv {
			if err := o.Set(p.Key, p.Value); err != nil {
				return nil, err
			}
		}
		return card.New(k, o)
	}
	rg := start(t, f, pn532emu.Options{Faults: script.HostFaults})
	run := scenario.NewRunner(script, f, factory, rg.Emu.Frames)
	if err := run.Run(context.Background()); err != nil { // card and tap: immediate
		t.Fatal(err)
	}
	d := openDevice(t, rg)
	if _, err := selectB(d); err != nil {
		t.Fatal(err)
	}
	selectAP := []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01}
	if r := apdu(t, d, selectAP); sw(r) != 0x9000 { // APDU 1
		t.Fatalf("APDU 1: % X", r)
	}
	if r := apdu(t, d, []byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x06}); sw(r) != 0x9000 { // 2: behind 30 S(WTX)
		t.Fatalf("APDU 2 (WTX storm): % X", r)
	}
	if r := apdu(t, d, []byte{0x00, 0xB0, 0x00, 0x00, 0x20}); !bytes.Equal(r, []byte{0x6A, 0x82}) { // 3
		t.Fatalf("APDU 3: % X, want 6A 82", r)
	}
	// APDU 4: the chip's answer reaches libnfc with a bad DCS.
	rg.Emu.Inject(pn532emu.Fault{Kind: pn532emu.FaultChecksum, Frame: rg.Emu.Frames() + 1})
	rx := make([]byte, 264)
	if _, err := d.InitiatorTransceiveBytes([]byte{0x00, 0xB0, 0x00, 0x00, 0x20}, rx, 2000); !errors.Is(err, nfc.Error(nfc.EIO)) {
		t.Fatalf("APDU 4 with a corrupted checksum: %v, want EIO", err)
	}
	if r := apdu(t, d, []byte{0x00, 0xB0, 0x00, 0x00, 0x20}); sw(r) != 0x9000 { // 5: the link recovered
		t.Fatalf("APDU 5: % X", r)
	}
	if _, err := d.InitiatorTransceiveBytes(selectAP, rx, 2000); err == nil { // 6: card gone
		t.Fatal("APDU 6 to a removed card succeeded")
	}
	if len(f.PICCs()) != 0 {
		t.Fatal("the card is still in the field")
	}
	if run.APDUs() != 6 {
		t.Fatalf("the card wrapper counted %d APDUs, want 6", run.APDUs())
	}
}

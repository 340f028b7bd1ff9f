package libnfctest

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/pn532emu"
	"kazasu/drivers/sim/pn532emu/picctest"
	"kazasu/drivers/sim/rf"
	"kazasu/drivers/sim/vclock"
)

func myNumberLike() *picctest.TypeB {
	return &picctest.TypeB{ATQB: picctest.MyNumberATQB}
}

func TestScanDevice(t *testing.T) {
	r := start(t, &rf.Field{}, pn532emu.Options{})
	out, code := r.runTool(t, 20*time.Second, "nfc-scan-device", "-v")
	if code != 0 {
		t.Fatalf("nfc-scan-device -v: exit %d\n%s", code, out)
	}
	for _, want := range []string{"1 NFC device(s) found", "pn532_uart:" + r.Link, "chip: PN532 v1.6", "ISO/IEC 14443-4B (106 kbps)"} {
		if !strings.Contains(out, want) {
			t.Errorf("nfc-scan-device -v output lacks %q:\n%s", want, out)
		}
	}
	// libnfc closes an initiator with InRelease, RF off, PowerDown (§5.8).
	if got := r.Emu.Power(); got != pn532emu.PowerDown {
		t.Errorf("after nfc-scan-device the chip is %v, want PowerDown", got)
	}
}

func TestListTypeB(t *testing.T) {
	t.Run("virtual time", func(t *testing.T) { listTypeB(t, pn532emu.Options{}) })
	// With the modelled time really spent (as kazasu sim does), libnfc's
	// timeouts must still be met.
	t.Run("real time", func(t *testing.T) { listTypeB(t, pn532emu.Options{Clock: vclock.Real{}}) })
}

func listTypeB(t *testing.T, opts pn532emu.Options) {
	f := &rf.Field{}
	card := myNumberLike()
	f.Add(card)
	r := start(t, f, opts)
	out, code := r.runTool(t, 30*time.Second, "nfc-list", "-v")
	if code != 0 {
		t.Fatalf("nfc-list -v: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"1 ISO14443B passive target(s) found:",
		"ISO/IEC 14443-4B (106 kbps) target:",
		"PUPI: 01  02  03  04",
		"Application Data: 00  00  05  e0",
		"Protocol Info: b3  81  a1",
		"Maximum frame sizes: 256 bytes",
		"Protocol types supported: ISO/IEC 14443-4",
		"Frame Waiting Time: 309.3 ms",
		"0 ISO14443A passive target(s) found.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("nfc-list -v output lacks %q:\n%s", want, out)
		}
	}
	// The firmware's own ATTRIB: CID 1, FSD 64 (FSDI 5), 106 kbit/s.
	var attrib []byte
	for _, fr := range card.Log {
		if len(fr.Data) > 0 && fr.Data[0] == 0x1D {
			attrib = fr.Data
		}
	}
	want := []byte{0x1D, 0x01, 0x02, 0x03, 0x04, 0x00, 0x05, 0x01, 0x01}
	if string(attrib) != string(want) {
		t.Errorf("ATTRIB on air = % X, want % X", attrib, want)
	}
}

func TestListNothing(t *testing.T) {
	r := start(t, &rf.Field{}, pn532emu.Options{})
	out, code := r.runTool(t, 30*time.Second, "nfc-list")
	if code != 0 || !strings.Contains(out, "NFC device: user defined device opened") || strings.Contains(out, "passive target(s) found:") {
		t.Fatalf("nfc-list with an empty field: exit %d\n%s", code, out)
	}
}

func TestListTypeA(t *testing.T) {
	f := &rf.Field{}
	f.Add(&picctest.TypeA{ATQA: [2]byte{0x44, 0x00}, UID: []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}, SAK: 0x20, ATS: []byte{0x05, 0x78, 0x80, 0x70, 0x02}})
	r := start(t, f, pn532emu.Options{})
	out, code := r.runTool(t, 30*time.Second, "nfc-list")
	if code != 0 {
		t.Fatalf("nfc-list: exit %d\n%s", code, out)
	}
	for _, want := range []string{"1 ISO14443A passive target(s) found:", "ATQA (SENS_RES): 00  44", "UID (NFCID1): 04  11  22  33  44  55  66", "SAK (SEL_RES): 20", "ATS: 78  80  70  02"} {
		if !strings.Contains(out, want) {
			t.Errorf("nfc-list output lacks %q:\n%s", want, out)
		}
	}
}

// TestPoll: nfc-poll finds the card (InAutoPoll), then waits for its
// removal with presence checks (42 BA 01); removing it ends the tool.
func TestPoll(t *testing.T) {
	f := &rf.Field{}
	card := myNumberLike()
	f.Add(card)
	r := start(t, f, pn532emu.Options{})
	path := needTool(t, "nfc-poll")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = append(os.Environ(), "LIBNFC_DEVICE=pn532_uart:"+r.Link, "LIBNFC_LOG_LEVEL=0")
	cmd.WaitDelay = time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { err := cmd.Wait(); pw.Close(); waitErr <- err }()
	// "Waiting for card removing..." has no newline: read bytes, not lines.
	var out strings.Builder
	found := false
	buf := make([]byte, 256)
	for {
		n, err := pr.Read(buf)
		out.Write(buf[:n])
		if !found && strings.Contains(out.String(), "Waiting for card removing") {
			found = true
			f.Remove(card)
		}
		if err != nil {
			break
		}
	}
	err := <-waitErr
	if ctx.Err() != nil {
		t.Fatalf("nfc-poll did not finish; output:\n%s", out.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) || err != nil {
		t.Fatalf("nfc-poll: %v\n%s", err, out.String())
	}
	for _, want := range []string{"ISO/IEC 14443-4B (106 kbps) target:", "PUPI: 01  02  03  04", "Protocol Info: b3  81  a1", "done."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("nfc-poll output lacks %q:\n%s", want, out.String())
		}
	}
	if !found {
		t.Errorf("nfc-poll never waited for removal:\n%s", out.String())
	}
}

// TestListSimulatedTokens lists each standard simulated token
// (drivers/sim/card) with nfc-list: My Number Cards and the old Juki card
// as 14443-4B targets with their protocol info, phones and the Type A card
// as 14443A targets with an ATS.
func TestListSimulatedTokens(t *testing.T) {
	needTool(t, "nfc-list")
	tests := []struct {
		kind card.Kind
		want []string
	}{
		{card.KindMyNumber, []string{"1 ISO14443B passive target(s) found:", "ISO/IEC 14443-4B (106 kbps) target:", "Protocol Info: b3  81  a1"}},
		{card.KindJuki, []string{"1 ISO14443B passive target(s) found:", "Protocol Info: b3  81  91"}},
		{card.KindAndroid, []string{"1 ISO14443A passive target(s) found:", "SAK (SEL_RES): 20", "ATS: "}},
		{card.KindTypeA, []string{"1 ISO14443A passive target(s) found:", "ATS: "}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			tok, err := card.New(tt.kind, card.Options{Seed: "libnfctest"})
			if err != nil {
				t.Fatal(err)
			}
			f := &rf.Field{}
			f.Add(tok)
			r := start(t, f, pn532emu.Options{})
			out, code := r.runTool(t, 30*time.Second, "nfc-list")
			if code != 0 {
				t.Fatalf("nfc-list: exit %d\n%s", code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("nfc-list output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

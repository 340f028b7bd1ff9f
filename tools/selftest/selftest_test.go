package selftest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"kazasu/drivers/reader"
	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/pn532emu"
	"kazasu/drivers/sim/rf"
)

// fault is a chip fault the proxy plays between the host and the emulator.
type fault int

const (
	healthy     fault = iota
	noReader          // nothing answers on the port
	wrongFW           // GetFirmwareVersion answers a v1.4 chip
	diagnoseBad       // Diagnose 00 echoes one byte wrong
	fieldStuck        // RFConfiguration "field off" leaves the field on
)

// proxy sits on the master side of a pty: host bytes go to the emulator
// (rewritten for fieldStuck), the emulator's frames come back (rewritten
// for wrongFW and diagnoseBad). The emulator writes each frame whole.
type proxy struct {
	m     *os.File
	fault fault
	carry []byte
}

// fieldOff is RFConfiguration item 01 with data 00 (field off) from LEN
// on: LEN LCS TFI CMD item data DCS.
var (
	fieldOff   = []byte{0x04, 0xFC, 0xD4, 0x32, 0x01, 0x00, 0xF9}
	fieldOnFix = []byte{0x04, 0xFC, 0xD4, 0x32, 0x01, 0x01, 0xF8}
)

func (p *proxy) Read(b []byte) (int, error) {
	n, err := p.m.Read(b[:len(b)-len(fieldOff)])
	if p.fault != fieldStuck || n == 0 {
		return n, err
	}
	buf := append(p.carry, b[:n]...)
	p.carry = nil
	buf = bytes.ReplaceAll(buf, fieldOff, fieldOnFix)
	// Hold back a tail that may be the start of the pattern.
	for k := min(len(fieldOff)-1, len(buf)); k > 0; k-- {
		if bytes.HasPrefix(fieldOff, buf[len(buf)-k:]) {
			p.carry = append([]byte(nil), buf[len(buf)-k:]...)
			buf = buf[:len(buf)-k]
			break
		}
	}
	return copy(b, buf), err
}

func (p *proxy) Write(b []byte) (int, error) {
	out := append([]byte(nil), b...)
	// Normal information frame: 00 00 FF LEN LCS D5 CMD+1 data DCS 00.
	if len(out) >= 9 && out[0] == 0 && out[1] == 0 && out[2] == 0xFF && out[3] != 0 && out[3] != 0xFF && out[5] == 0xD5 {
		n := int(out[3])
		data := out[5 : 5+n]
		changed := false
		switch {
		case p.fault == wrongFW && data[1] == 0x03 && n == 6:
			data[3], data[4] = 1, 4 // firmware 1.4
			changed = true
		case p.fault == diagnoseBad && data[1] == 0x01 && n > 32 && data[2] == 0x00:
			// Only the self-test's long pattern: the driver's own short
			// line test at bring-up passes.
			data[n/2+1] ^= 0x20
			changed = true
		}
		if changed {
			var sum byte
			for _, c := range data {
				sum += c
			}
			out[5+n] = -sum
		}
	}
	if _, err := p.m.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// emulated starts an emulator behind a proxy on a pty and returns the
// reader URI and the simulated field.
func emulated(t *testing.T, f fault, withCard bool) (string, *rf.Field) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	field := &rf.Field{}
	if withCard {
		tok, err := card.New(card.KindMyNumber, card.Options{Seed: "selftest"})
		if err != nil {
			t.Fatal(err)
		}
		field.Add(tok)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if f != noReader {
		emu := pn532emu.New(pn532emu.Options{Field: field})
		wg.Add(1)
		go func() {
			defer wg.Done()
			emu.ServeStream(ctx, &proxy{m: m, fault: f})
		}()
	}
	t.Cleanup(func() {
		cancel()
		m.Close()
		s.Close()
		wg.Wait()
	})
	// The emulator's own pty keeps the slave open in raw mode; so do we.
	if err := rawMode(s); err != nil {
		t.Fatal(err)
	}
	return "pn532_uart:" + s.Name(), field
}

func config(uri string, field *rf.Field) Config {
	return Config{
		Board:       "pi4",
		ReaderURI:   uri,
		FieldProbe:  func(context.Context, *reader.Reader) (bool, error) { return field.On(), nil },
		StepTimeout: 3 * time.Second,
		PollTimeout: 500 * time.Millisecond,
		Now:         func() time.Time { return time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC) },
		NotBefore:   time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		Synced:      func() (bool, error) { return true, nil },
	}
}

func byName(r *Report) map[string]Check {
	m := map[string]Check{}
	for _, c := range r.Checks {
		m[c.Name] = c
	}
	return m
}

func TestHealthyEmulatorPasses(t *testing.T) {
	uri, field := emulated(t, healthy, true)
	c := config(uri, field)
	c.DataDir = t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	c.ServiceURL = "https://" + l.Addr().String()
	rep := Run(context.Background(), c)
	if !rep.OK {
		t.Fatalf("healthy emulator failed: %+v", rep.Failed())
	}
	for _, c := range rep.Checks {
		t.Logf("%-20s %4d ms %s", c.Name, c.MS, c.Detail)
	}
	got := byName(rep)
	for _, name := range []string{"board", "reader", "chip firmware", "communication line", "rf field", "poll", "clock", "data partition", "issuance service"} {
		if got[name].Status != Pass {
			t.Errorf("%s: %s %q, want pass", name, got[name].Status, got[name].Detail)
		}
	}
	if !strings.Contains(got["poll"].Detail, "test card answered: Type B") {
		t.Errorf("poll with a card: %q", got["poll"].Detail)
	}
	// No GPIO in the config: LED and buzzer are skipped, never passed.
	for _, name := range []string{"led", "buzzer"} {
		if got[name].Status != Skip || !strings.Contains(got[name].Detail, "no GPIO") {
			t.Errorf("%s: %s %q, want skip (no GPIO)", name, got[name].Status, got[name].Detail)
		}
	}
	if field.On() {
		t.Error("the field was left on")
	}
}

func TestInjectedFaultsFailWithAClearLine(t *testing.T) {
	cases := []struct {
		fault fault
		check string
		want  string
	}{
		{noReader, "reader", "no reader answered on pn532_uart:"},
		{wrongFW, "chip firmware", "firmware 1.4 support 0x07, want a PN532 (IC 0x32) with firmware 1.6"},
		{diagnoseBad, "communication line", "Diagnose communication-line test"},
		{fieldStuck, "rf field", "RF field stuck on: still on after switching it off"},
	}
	for _, tc := range cases {
		uri, field := emulated(t, tc.fault, false)
		rep := Run(context.Background(), config(uri, field))
		failed := rep.Failed()
		if rep.OK || len(failed) != 1 || failed[0].Name != tc.check || !strings.Contains(failed[0].Detail, tc.want) {
			t.Errorf("fault %d: failed checks %+v; want exactly %q failing with %q", tc.fault, failed, tc.check, tc.want)
		}
		got := byName(rep)
		if tc.fault != noReader && got["poll"].Status != Pass {
			t.Errorf("fault %d: poll %s %q", tc.fault, got["poll"].Status, got["poll"].Detail)
		}
		if tc.fault == noReader {
			for _, n := range []string{"chip firmware", "communication line", "rf field", "poll"} {
				if got[n].Status != Skip {
					t.Errorf("no reader: %s is %s, want skip", n, got[n].Status)
				}
			}
		}
	}
}

type fakeGPIO struct {
	pulsed []string
	err    error
}

func (g *fakeGPIO) Pulse(_ context.Context, line string, _ time.Duration) error {
	g.pulsed = append(g.pulsed, line)
	return g.err
}

func TestBoardGPIOClockAndData(t *testing.T) {
	// Detection from the device tree; no reader URI: the board's default.
	dt := fstest.MapFS{"proc/device-tree/model": {Data: []byte("Raspberry Pi 4 Model B Rev 1.4\x00")}}
	g := &fakeGPIO{}
	c := Config{DetectFS: dt, GPIO: g, Open: func(ctx context.Context, uri string) (*reader.Reader, error) {
		if !strings.HasPrefix(uri, "pn532_uart:/dev/ttyAMA0") {
			t.Errorf("default reader URI %q", uri)
		}
		return nil, errors.New("no such device")
	}, Now: func() time.Time { return time.Unix(0, 0) }, NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		DataDir: "/proc/no-such-dir/data"}
	rep := Run(context.Background(), c)
	got := byName(rep)
	if got["board"].Status != Pass || rep.Board != "pi4" {
		t.Fatalf("board: %+v", got["board"])
	}
	if got["clock"].Status != Fail || !strings.Contains(got["clock"].Detail, "1970-01-01") {
		t.Errorf("clock: %+v", got["clock"])
	}
	if got["data partition"].Status != Fail {
		t.Errorf("data partition: %+v", got["data partition"])
	}
	if got["issuance service"].Status != Skip {
		t.Errorf("service: %+v", got["issuance service"])
	}
	for _, n := range []string{"led", "buzzer"} {
		if got[n].Status != Pass {
			t.Errorf("%s: %+v", n, got[n])
		}
	}
	if strings.Join(g.pulsed, ",") != "GPIO22,GPIO18" {
		t.Errorf("pulsed %v, want the pi4 LED (GPIO22) and buzzer (GPIO18)", g.pulsed)
	}
	// A GPIO that fails is a failure; a machine without the line, a skip.
	g.err = io.ErrUnexpectedEOF
	rep = Run(context.Background(), c)
	for _, n := range []string{"led", "buzzer"} {
		if ch := byName(rep)[n]; ch.Status != Fail || !strings.Contains(ch.Detail, "header pin") {
			t.Errorf("%s with a failing GPIO: %+v", n, ch)
		}
	}
	g.err = ErrNoGPIO
	rep = Run(context.Background(), c)
	for _, n := range []string{"led", "buzzer"} {
		if ch := byName(rep)[n]; ch.Status != Skip || !strings.Contains(ch.Detail, "skipped: no GPIO") {
			t.Errorf("%s without the line: %+v", n, ch)
		}
	}
	// Unknown board, no --reader: a clear failure.
	rep = Run(context.Background(), Config{DetectFS: fstest.MapFS{}, Now: time.Now})
	if got := byName(rep)["reader"]; got.Status != Fail || !strings.Contains(got.Detail, "no --reader") {
		t.Errorf("reader without board: %+v", got)
	}
}

// rawMode is cfmakeraw(3) on the pty slave we keep open.
func rawMode(f *os.File) error {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// The PN532 emulator does not model CIU_TxControl: through the register
// probe (no simulated field to look at) the RF check is skipped with the
// reason, never passed.
// TestFieldStateFromTxControl: without a probe of the simulated field, the
// check reads the chip's CIU_TxControl antenna bits (the emulator mirrors
// the field there, as the chip drives its antennas).
func TestFieldStateFromTxControl(t *testing.T) {
	uri, field := emulated(t, healthy, false)
	c := config(uri, field)
	c.FieldProbe = nil
	rep := Run(context.Background(), c)
	got := byName(rep)["rf field"]
	if got.Status != Pass || !strings.Contains(got.Detail, "confirmed") {
		t.Fatalf("rf field: %+v", got)
	}
	if !rep.OK {
		t.Fatalf("failed: %+v", rep.Failed())
	}
}

func TestServiceTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	base := Config{Board: "pi4", Open: func(context.Context, string) (*reader.Reader, error) { return nil, errors.New("none") },
		ServiceURL: srv.URL, Now: time.Now, Synced: func() (bool, error) { return true, nil }}
	c := base
	c.ServiceTLS = tlsConf(&tls.Config{RootCAs: pool, ServerName: "example.com"})
	if got := byName(Run(context.Background(), c))["issuance service"]; got.Status != Pass || !strings.Contains(got.Detail, "server authenticated") {
		t.Fatalf("trusted: %+v", got)
	}
	c.ServiceTLS = tlsConf(&tls.Config{RootCAs: x509.NewCertPool(), ServerName: "example.com"})
	if got := byName(Run(context.Background(), c))["issuance service"]; got.Status != Fail || !strings.Contains(got.Detail, "TLS handshake failed") {
		t.Fatalf("untrusted: %+v", got)
	}
	// A terminal clock far off fails the handshake too (the test
	// certificate is valid 1970-2084).
	c.ServiceTLS = tlsConf(&tls.Config{RootCAs: pool, ServerName: "example.com"})
	c.Now = func() time.Time { return time.Date(2100, 1, 2, 0, 0, 0, 0, time.UTC) }
	if got := byName(Run(context.Background(), c))["issuance service"]; got.Status != Fail {
		t.Fatalf("clock off: %+v", got)
	}
	c.Now = time.Now
	c.ServiceTLS = func() (*tls.Config, error) { return nil, errors.New("open tls/client-key.pem: no such file") }
	if got := byName(Run(context.Background(), c))["issuance service"]; got.Status != Fail || !strings.Contains(got.Detail, "client-key.pem") {
		t.Fatalf("missing key: %+v", got)
	}
	c = base
	c.ServiceURL = "https://127.0.0.1:1"
	if got := byName(Run(context.Background(), c))["issuance service"]; got.Status != Fail || !strings.Contains(got.Detail, "unreachable") {
		t.Fatalf("closed port: %+v", got)
	}
}

func tlsConf(c *tls.Config) func() (*tls.Config, error) {
	return func() (*tls.Config, error) { return c, nil }
}

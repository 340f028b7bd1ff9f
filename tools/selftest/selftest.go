// Package selftest is the commissioning check a technician runs on a kazasu
// terminal before leaving the shop (`kazasu selftest`): board, reader,
// chip firmware, the Diagnose communication-line test, RF field on and
// off, a poll (reading a test card if one lies on the reader), LED and
// buzzer, clock, data partition and the issuance service. Each check says
// pass, fail, warn or skip, with a line a technician can act on; a check
// that cannot run here (no GPIO on a laptop) is skipped, never passed.
package selftest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"kazasu/boards"
	"kazasu/drivers/nfc"
	"kazasu/drivers/pn532"
	"kazasu/drivers/reader"
)

// Status is a check's outcome.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "fail"
	Warn Status = "warn" // works, but needs attention (e.g. clock not yet synchronised)
	Skip Status = "skip" // could not be checked here; says why
)

// Check is one line of the report.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	MS     int64  `json:"ms"`
}

// Report is the whole result.
type Report struct {
	Board  string    `json:"board,omitempty"`
	Reader string    `json:"reader,omitempty"`
	Time   time.Time `json:"time"`
	Checks []Check   `json:"checks"`
	OK     bool      `json:"ok"` // no check failed
}

// Failed returns the failed checks.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c)
		}
	}
	return out
}

// GPIO drives output lines by name ("GPIO22").
type GPIO interface {
	// Pulse drives the line high for d, reading the level back, then low
	// and reads back again. ErrNoGPIO means the machine has no such line.
	Pulse(ctx context.Context, line string, d time.Duration) error
}

// ErrNoGPIO: the machine has no GPIO controller (or not this line).
var ErrNoGPIO = errors.New("no GPIO")

// Config says what to check.
type Config struct {
	// Board is the board profile id ("pi4"); empty detects it from
	// DetectFS (the device tree model).
	Board    string
	DetectFS fs.FS // nil: the host's root
	// ReaderURI is the reader; empty uses the board's default wiring.
	ReaderURI string
	// Open opens the reader; nil is reader.Open.
	Open func(ctx context.Context, uri string) (*reader.Reader, error)
	// FieldProbe tells whether the reader's RF field is on; nil reads the
	// simulated field of sim: readers and the PN532's CIU_TxControl
	// register (Tx1RFEn|Tx2RFEn) otherwise.
	FieldProbe func(ctx context.Context, r *reader.Reader) (bool, error)
	// GPIO drives the LED and buzzer lines; nil means no GPIO here.
	GPIO GPIO
	// DataDir is the terminal's data directory (on /perm); empty skips.
	DataDir string
	// ServiceURL is the issuance service (relay URL); empty skips.
	ServiceURL string
	// ServiceTLS, if set, gives the TLS configuration (the terminal's
	// trust roots and client certificate) for a handshake after the TCP
	// connect, which catches a wrong clock, CA or identity; an error (a
	// missing key file) fails the check. Nil checks TCP only.
	ServiceTLS func() (*tls.Config, error)
	// Now is the clock (nil: time.Now); NotBefore is the earliest
	// plausible time (the build time): a Pi has no RTC.
	Now       func() time.Time
	NotBefore time.Time
	// Adjtimex reports whether the kernel clock is synchronised (nil:
	// adjtimex(2)); tests replace it.
	Synced func() (bool, error)
	// PollTimeout bounds the test-card poll (default 2 s).
	PollTimeout time.Duration
	// StepTimeout bounds each reader command (default 5 s).
	StepTimeout time.Duration
}

// Expected PN532 identity (GetFirmwareVersion): IC 0x32, firmware 1.6.
const (
	wantIC  = 0x32
	wantVer = 1
	wantRev = 6
)

// regTxControl is CIU_TxControl; bits 0 and 1 enable the antenna drivers.
const regTxControl = 0x6304

// linePattern is sent through Diagnose 00: every bit pattern a marginal
// line or a wrong baud rate garbles (alternating bits, runs, all zero, all
// one, the frame's own preamble bytes).
var linePattern = func() []byte {
	b := []byte{0x00, 0xFF, 0x55, 0xAA, 0x00, 0x00, 0xFF, 0x01, 0xFE, 0xD4, 0xD5, 0x7F, 0x80}
	for i := 0; len(b) < 64; i++ {
		b = append(b, byte(i*37+11))
	}
	return b
}()

// Run runs every check and returns the report; it never stops early, so a
// technician sees everything that is wrong at once.
func Run(ctx context.Context, c Config) *Report {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.PollTimeout == 0 {
		c.PollTimeout = 2 * time.Second
	}
	if c.StepTimeout == 0 {
		c.StepTimeout = 5 * time.Second
	}
	rep := &Report{Time: c.Now().UTC()}
	add := func(name string, f func() (Status, string)) {
		t0 := time.Now()
		st, d := f()
		rep.Checks = append(rep.Checks, Check{Name: name, Status: st, Detail: d, MS: time.Since(t0).Milliseconds()})
	}

	// Board.
	var prof *boards.Profile
	add("board", func() (Status, string) {
		var err error
		if c.Board != "" {
			if prof, err = boards.ByID(c.Board); err != nil {
				return Fail, err.Error()
			}
			return Pass, fmt.Sprintf("%s (%s), given with --board", prof.Name, prof.ID)
		}
		fsys := c.DetectFS
		if fsys == nil {
			fsys = os.DirFS("/")
		}
		if prof, err = boards.Detect(fsys); err != nil {
			return Fail, fmt.Sprintf("not detected: %v (give --board)", err)
		}
		return Pass, fmt.Sprintf("%s (%s), detected from the device tree", prof.Name, prof.ID)
	})
	if prof != nil {
		rep.Board = prof.ID
	}
	wiring := wiringFor(prof, c.ReaderURI)

	// Reader.
	uri := c.ReaderURI
	if uri == "" && wiring != nil {
		uri = wiring.ReaderURI()
	}
	rep.Reader = uri
	var r *reader.Reader
	add("reader", func() (Status, string) {
		if uri == "" {
			return Fail, "no reader URI: the board is unknown and no --reader was given"
		}
		open := c.Open
		if open == nil {
			open = func(ctx context.Context, uri string) (*reader.Reader, error) {
				return reader.Open(ctx, uri, reader.Options{})
			}
		}
		octx, cancel := context.WithTimeout(ctx, 3*c.StepTimeout)
		defer cancel()
		var err error
		if r, err = open(octx, uri); err != nil {
			return Fail, fmt.Sprintf("no reader answered on %s: %v (check the wiring, the config.txt fragment and that nothing else holds the port)", uri, err)
		}
		info := r.Info()
		return Pass, fmt.Sprintf("%s opened (%s %s, driver %s)", uri, info.Chip, info.Firmware, info.Driver)
	})
	if r != nil {
		defer r.Close()
	}
	dev := (*pn532.Dev)(nil)
	if r != nil {
		dev = r.PN532()
	}
	step := func(f func(ctx context.Context) (Status, string)) func() (Status, string) {
		return func() (Status, string) {
			if r == nil {
				return Skip, "no reader"
			}
			sctx, cancel := context.WithTimeout(ctx, c.StepTimeout)
			defer cancel()
			return f(sctx)
		}
	}
	add("chip firmware", step(func(ctx context.Context) (Status, string) {
		if dev == nil {
			return Skip, fmt.Sprintf("%s is not driven by kazasu's PN532 driver", r.Info().Driver)
		}
		fw, err := dev.GetFirmwareVersion(ctx)
		if err != nil {
			return Fail, fmt.Sprintf("GetFirmwareVersion: %v", err)
		}
		got := fmt.Sprintf("IC 0x%02X firmware %d.%d support 0x%02X", fw.IC, fw.Ver, fw.Rev, fw.Support)
		if fw.IC != wantIC || fw.Ver != wantVer || fw.Rev != wantRev {
			return Fail, fmt.Sprintf("chip answers %s, want a PN532 (IC 0x%02X) with firmware %d.%d: a clone or a different chip", got, wantIC, wantVer, wantRev)
		}
		if fw.Support&0x03 != 0x03 {
			return Fail, got + ": ISO/IEC 14443 Type A and B are not both supported (My Number Cards are Type B)"
		}
		return Pass, "PN532 " + got
	}))
	add("communication line", step(func(ctx context.Context) (Status, string) {
		if dev == nil {
			return Skip, fmt.Sprintf("%s is not driven by kazasu's PN532 driver", r.Info().Driver)
		}
		if err := dev.CommunicationLineTest(ctx, linePattern); err != nil {
			return Fail, fmt.Sprintf("Diagnose communication-line test: %v (noisy or wrongly clocked host link)", err)
		}
		return Pass, fmt.Sprintf("Diagnose 00 echoed %d bytes exactly", len(linePattern))
	}))
	add("rf field", step(func(ctx context.Context) (Status, string) {
		probe := c.FieldProbe
		if probe == nil {
			probe = defaultFieldProbe()
		}
		for _, on := range []bool{true, false} {
			if err := r.SetField(ctx, on); err != nil {
				return Fail, fmt.Sprintf("switching the field %s: %v", onOff(on), err)
			}
			got, err := probe(ctx, r)
			if errors.Is(err, errors.ErrUnsupported) {
				return Skip, err.Error()
			}
			if err != nil {
				return Fail, fmt.Sprintf("reading the field state: %v", err)
			}
			if got != on {
				return Fail, fmt.Sprintf("RF field stuck %s: still %s after switching it %s (antenna driver or matching circuit fault)", onOff(got), onOff(got), onOff(on))
			}
		}
		return Pass, "switched on and off, both confirmed"
	}))
	add("poll", step(func(ctx context.Context) (Status, string) {
		pctx, cancel := context.WithTimeout(ctx, c.PollTimeout)
		defer cancel()
		card, err := r.Poll(pctx, nfc.PollOptions{})
		switch {
		case err == nil:
			t := card.Target()
			rctx, rcancel := context.WithTimeout(ctx, c.StepTimeout)
			defer rcancel()
			if rerr := card.Release(rctx); rerr != nil {
				return Fail, fmt.Sprintf("test card found (%s) but releasing it failed: %v", t.Tech, rerr)
			}
			return Pass, fmt.Sprintf("test card answered: Type %s, ID %X, FSC %d", t.Tech, t.ID, t.FSC)
		case errors.Is(err, nfc.ErrNoTarget) || errors.Is(err, nfc.ErrTimeout) && pctx.Err() != nil:
			return Pass, "poll ran; no test card on the reader (lay one on it to test a card exchange)"
		default:
			return Fail, fmt.Sprintf("poll: %v", err)
		}
	}))
	if r != nil {
		setFieldOff(ctx, r, c.StepTimeout)
	}

	// LED and buzzer.
	for _, sig := range []struct {
		name string
		pin  func(w *boards.Wiring) boards.GPIO
		d    time.Duration
	}{{"led", func(w *boards.Wiring) boards.GPIO { return w.LED }, 300 * time.Millisecond}, {"buzzer", func(w *boards.Wiring) boards.GPIO { return w.Buzzer }, 100 * time.Millisecond}} {
		add(sig.name, func() (Status, string) {
			if wiring == nil {
				return Skip, "no board profile, so no pin assignment"
			}
			pin := sig.pin(wiring)
			if !pin.Valid() {
				return Skip, fmt.Sprintf("not wired on the %s %s wiring", rep.Board, wiring.Bus)
			}
			if c.GPIO == nil {
				return Skip, "skipped: no GPIO on this machine"
			}
			if err := c.GPIO.Pulse(ctx, pin.Name(), sig.d); err != nil {
				if errors.Is(err, ErrNoGPIO) {
					return Skip, fmt.Sprintf("skipped: no GPIO (%v)", err)
				}
				return Fail, fmt.Sprintf("%s (header pin %d): %v", pin.Name(), pin.HeaderPin(), err)
			}
			return Pass, fmt.Sprintf("%s (header pin %d) driven high and low, levels read back; %s", pin.Name(), pin.HeaderPin(), map[string]string{"led": "the LED should have lit", "buzzer": "the buzzer should have beeped"}[sig.name])
		})
	}

	// Clock.
	add("clock", func() (Status, string) {
		now := c.Now().UTC()
		if now.Before(c.NotBefore) {
			return Fail, fmt.Sprintf("reads %s, before this build (%s): NTP has not set it (network, firewall, ntp server?)", now.Format(time.RFC3339), c.NotBefore.UTC().Format(time.RFC3339))
		}
		synced := c.Synced
		if synced == nil {
			synced = kernelSynced
		}
		ok, err := synced()
		if err != nil {
			return Warn, fmt.Sprintf("reads %s; synchronisation state unknown: %v", now.Format(time.RFC3339), err)
		}
		if !ok {
			return Warn, fmt.Sprintf("reads %s but the kernel says it is not synchronised (adjtimex): certificate and card checks may fail if it drifts", now.Format(time.RFC3339))
		}
		return Pass, fmt.Sprintf("reads %s, synchronised", now.Format(time.RFC3339))
	})

	// Data partition.
	add("data partition", func() (Status, string) {
		if c.DataDir == "" {
			return Skip, "no data directory configured"
		}
		if err := dataWritable(c.DataDir); err != nil {
			return Fail, fmt.Sprintf("%s: %v", c.DataDir, err)
		}
		return Pass, fmt.Sprintf("%s: file created, synced, read back and removed", c.DataDir)
	})

	// Issuance service.
	add("issuance service", func() (Status, string) {
		if c.ServiceURL == "" {
			return Skip, "no service URL configured"
		}
		addr, err := hostPort(c.ServiceURL)
		if err != nil {
			return Fail, err.Error()
		}
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, c.StepTimeout)
		defer cancel()
		t0 := time.Now()
		conn, err := d.DialContext(dctx, "tcp", addr)
		if err != nil {
			return Fail, fmt.Sprintf("%s unreachable: %v (network, DNS, firewall?)", addr, err)
		}
		defer conn.Close()
		tcp := time.Since(t0)
		if c.ServiceTLS == nil {
			return Pass, fmt.Sprintf("%s accepts connections (TCP connect in %d ms; TLS not checked)", addr, tcp.Milliseconds())
		}
		tc, err := c.ServiceTLS()
		if err != nil {
			return Fail, fmt.Sprintf("%s reachable, but the terminal's TLS material is not usable: %v", addr, err)
		}
		tc = tc.Clone()
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(addr)
		}
		if tc.Time == nil {
			tc.Time = c.Now
		}
		tl := tls.Client(conn, tc)
		if err := tl.HandshakeContext(dctx); err != nil {
			return Fail, fmt.Sprintf("%s reachable, but the TLS handshake failed: %v (clock, trust roots or the terminal's certificate?)", addr, err)
		}
		st := tl.ConnectionState()
		who := "?"
		if len(st.PeerCertificates) > 0 {
			who = st.PeerCertificates[0].Subject.String()
		}
		mutual := "server authenticated"
		if len(tc.Certificates) > 0 || tc.GetClientCertificate != nil {
			mutual = "mutual TLS with the terminal's certificate"
		}
		return Pass, fmt.Sprintf("%s: %s (%s, %s) in %d ms", addr, mutual, who, tls.VersionName(st.Version), time.Since(t0).Milliseconds())
	})

	rep.OK = len(rep.Failed()) == 0
	return rep
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// setFieldOff leaves the field off after the checks.
func setFieldOff(ctx context.Context, r *reader.Reader, d time.Duration) bool {
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return r.SetField(sctx, false) == nil
}

// wiringFor picks the board's wiring matching the reader URI's bus (the
// default wiring without a URI).
func wiringFor(p *boards.Profile, uri string) *boards.Wiring {
	if p == nil {
		return nil
	}
	if uri == "" {
		return p.Default()
	}
	for _, b := range []struct {
		prefix string
		bus    boards.Bus
	}{{"pn532_uart:", boards.UART}, {"pn532_i2c:", boards.I2C}, {"pn532_spi:", boards.SPI}} {
		if strings.HasPrefix(uri, b.prefix) {
			if w, err := p.Wiring(b.bus); err == nil {
				return w
			}
		}
	}
	return p.Default()
}

// defaultFieldProbe: the simulated field for sim: readers, else the
// PN532's CIU_TxControl antenna-driver bits (Tx1RFEn, Tx2RFEn). A real
// PN532 resets the register to 0x80 (InvTx2RFOn), so 0x00 before any
// non-zero reading means the register file is not modelled (the PN532
// emulator on a pty): the field state is then not verifiable, a skip.
func defaultFieldProbe() func(ctx context.Context, r *reader.Reader) (bool, error) {
	seen := false
	return func(ctx context.Context, r *reader.Reader) (bool, error) {
		if s := r.Sim(); s != nil && s.Field != nil {
			return s.Field.On(), nil
		}
		dev := r.PN532()
		if dev == nil {
			return false, fmt.Errorf("cannot read the field state through %s: %w", r.Info().Driver, errors.ErrUnsupported)
		}
		v, err := dev.ReadRegister(ctx, regTxControl)
		if err != nil {
			return false, err
		}
		if v[0] == 0 && !seen {
			return false, fmt.Errorf("CIU_TxControl reads 0x00 (a PN532 resets it to 0x80): this chip or emulator does not report its antenna drivers, the field state cannot be verified: %w", errors.ErrUnsupported)
		}
		seen = true
		switch v[0] & 0x03 {
		case 0:
			return false, nil
		case 0x03:
			return true, nil
		}
		return false, fmt.Errorf("only one antenna driver enabled (CIU_TxControl 0x%02X)", v[0])
	}
}

// kernelSynced asks adjtimex(2) whether NTP has synchronised the clock.
func kernelSynced() (bool, error) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, fmt.Errorf("adjtimex: %w", err)
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0, nil
}

// dataWritable creates, syncs, reads back and removes a probe file.
func dataWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".selftest-*")
	if err != nil {
		return err
	}
	p := f.Name()
	defer os.Remove(p)
	want := []byte("kazasu selftest " + time.Now().UTC().Format(time.RFC3339Nano))
	_, werr := f.Write(want)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(p), err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s read back %q, wrote %q", filepath.Base(p), got, want)
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// hostPort returns host:port of an http(s) URL.
func hostPort(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("service URL %q is not an http(s) URL", s)
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	port := "443"
	if u.Scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

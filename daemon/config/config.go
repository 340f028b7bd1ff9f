// Package config loads kazasud's configuration: one versioned TOML file,
// strictly decoded, with an embedded default that runs anywhere (one
// simulated reader, test trust, the reference issuance service on loopback).
//
// # Strictness
//
// Modelled on tailscale's ipn/conffile: `version` is required, unknown keys
// are errors, and every error names the file, line and key:
//
//	config: /etc/kazasu/kazasud.toml:14: relay.url: scheme must be https
//
// [ErrNoConfig] (wrapped) separates "there is no config file" from "the
// config file is invalid"; only the first may fall back to [Default].
//
// # Paths
//
// Relative paths in the file (revocation.store, relay.ca, relay.client_cert,
// relay.client_key, api.socket, api.token_file) are relative to data_dir;
// use [Config.Path]. data_dir itself, if relative, is relative to kazasud's
// working directory. Under data_dir kazasud keeps queue.db (daemon/queue) and
// audit/ (daemon/audit).
//
// # Keys
//
//	version          int, required, must be 1
//	terminal_id      string, [A-Za-z0-9._-]{1,64}
//	board            string, optional board profile id (boards.ByID: pi3bplus,
//	                 pi4, pi5, pi02w, cm4); with no readers, the profile's
//	                 PN532 wiring gives the reader (and its RSTPDN/IRQ lines)
//	board_bus        uart | i2c | spi: the profile's wiring ("" = default)
//	data_dir         string, required
//	log_level        debug | info | warn | error
//	metrics_listen   host:port for /metrics, /healthz, /readyz; "" disables
//	readers          array of {name, uri, poll_order, isodep}; at least one
//	                 unless board is set
//	                 name [a-z0-9_-]{1,32} unique; uri "scheme:..." (opaque
//	                 here, drivers/reader parses it); poll_order >= 0 (lower
//	                 first, ties in file order); isodep auto | chip | host
//	[trust]          roots_dir, pinned_roots (SHA-256 hex of extra root DER),
//	                 test_mode (accept test roots; never in production)
//	[revocation]     store, fail_closed, max_staleness (duration)
//	[relay]          url (https), ca (pinned CA PEM), client_cert, client_key,
//	                 connect_timeout, request_timeout
//	[relay.retry]    max_attempts (1..20), initial_backoff, max_backoff
//	[api]            socket, socket_mode (octal string, not world-writable),
//	                 listen (loopback host:port or ""), token_file (required
//	                 with listen), kiosk_listen (loopback host:port serving
//	                 the kiosk page and the API without a token, for the
//	                 kiosk's own browser; "" disables)
//	[timeouts]       tap, read, pin, verify, relay, remove (durations, ≤ 10m)
//
// Durations are strings with a unit ("250ms", "30s", "48h"); a bare number
// is an error rather than a count of nanoseconds.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Version is the only config file version this package reads.
const Version = 1

// MaxSize bounds a config file.
const MaxSize = 1 << 20

// ErrNoConfig is wrapped by [Load] when the file does not exist.
var ErrNoConfig = errors.New("no config file")

//go:embed default.toml
var defaultTOML []byte

// DefaultTOML returns the embedded default configuration file.
func DefaultTOML() []byte { return append([]byte(nil), defaultTOML...) }

// Config is kazasud's configuration.
type Config struct {
	Version    int    `toml:"version"`
	TerminalID string `toml:"terminal_id"`
	Board      string `toml:"board"`
	// BoardBus picks the board profile's PN532 wiring (uart, i2c, spi;
	// "" = the profile's default) when readers come from the board.
	BoardBus      string     `toml:"board_bus"`
	DataDir       string     `toml:"data_dir"`
	LogLevel      string     `toml:"log_level"`
	MetricsListen string     `toml:"metrics_listen"`
	Readers       []Reader   `toml:"readers"`
	Trust         Trust      `toml:"trust"`
	Revocation    Revocation `toml:"revocation"`
	Relay         Relay      `toml:"relay"`
	API           API        `toml:"api"`
	Timeouts      Timeouts   `toml:"timeouts"`
}

// Reader is one configured reader.
type Reader struct {
	Name      string `toml:"name"`
	URI       string `toml:"uri"`
	PollOrder int    `toml:"poll_order"`
	ISODEP    string `toml:"isodep"` // auto, chip or host
}

// Trust configures certificate validation anchors.
type Trust struct {
	RootsDir    string   `toml:"roots_dir"`
	PinnedRoots []string `toml:"pinned_roots"` // lower-case SHA-256 hex of root DER
	TestMode    bool     `toml:"test_mode"`
}

// Revocation configures the revocation store.
type Revocation struct {
	Store        string   `toml:"store"`
	FailClosed   bool     `toml:"fail_closed"`
	MaxStaleness Duration `toml:"max_staleness"`
}

// Relay configures the client of the issuance service.
type Relay struct {
	URL            string   `toml:"url"`
	CA             string   `toml:"ca"`
	ClientCert     string   `toml:"client_cert"`
	ClientKey      string   `toml:"client_key"`
	ConnectTimeout Duration `toml:"connect_timeout"`
	RequestTimeout Duration `toml:"request_timeout"`
	Retry          Retry    `toml:"retry"`
}

// Retry is a bounded exponential backoff policy.
type Retry struct {
	MaxAttempts    int      `toml:"max_attempts"`
	InitialBackoff Duration `toml:"initial_backoff"`
	MaxBackoff     Duration `toml:"max_backoff"`
}

// API configures the local kiosk API.
type API struct {
	Socket     string `toml:"socket"`
	SocketMode string `toml:"socket_mode"` // octal, e.g. "0660"
	Listen     string `toml:"listen"`      // loopback only; "" disables
	TokenFile  string `toml:"token_file"`
	// KioskListen serves the kiosk page (daemon/kiosk) and the API it
	// drives on a loopback address, without a token: for the kiosk's own
	// browser. "" disables.
	KioskListen string `toml:"kiosk_listen"`
}

// Timeouts bounds each transaction step.
type Timeouts struct {
	Tap    Duration `toml:"tap"`    // waiting for a card or phone
	Read   Duration `toml:"read"`   // reading the certificate
	PIN    Duration `toml:"pin"`    // waiting for the PIN
	Verify Duration `toml:"verify"` // PIN verify + signature + validation
	Relay  Duration `toml:"relay"`  // the issuance service round trip
	Remove Duration `toml:"remove"` // waiting for the card to leave
}

// Duration is a time.Duration written as a string with a unit.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. \"30s\")", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// Path resolves p against DataDir: "" stays "", absolute paths stay.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}

// QueuePath is the store-and-forward queue file (daemon/queue).
func (c *Config) QueuePath() string { return filepath.Join(c.DataDir, "queue.db") }

// AuditDir is the audit log directory (daemon/audit).
func (c *Config) AuditDir() string { return filepath.Join(c.DataDir, "audit") }

// SocketFileMode returns API.SocketMode as a file mode (validated by Parse).
func (c *Config) SocketFileMode() os.FileMode {
	m, _ := parseMode(c.API.SocketMode)
	return m
}

// SortedReaders returns the readers in polling order.
func (c *Config) SortedReaders() []Reader {
	rs := append([]Reader(nil), c.Readers...)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].PollOrder < rs[j].PollOrder })
	return rs
}

// Error is one problem in a config file. Line is 0 when the key is absent
// from the file (a required key, or a bad built-in default).
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": ")
		b.WriteString(e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file, in line order.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap gives the individual errors to errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// builtin is what a file is decoded over: every optional scalar has a value
// here, so a file need only say what differs. Readers have no default in a
// file (an empty list is an error).
func builtin() Config {
	return Config{
		LogLevel:      "info",
		MetricsListen: "127.0.0.1:9310",
		Revocation:    Revocation{Store: "revocation", FailClosed: true, MaxStaleness: Duration(48 * time.Hour)},
		Relay: Relay{
			ConnectTimeout: Duration(5 * time.Second),
			RequestTimeout: Duration(20 * time.Second),
			Retry:          Retry{MaxAttempts: 5, InitialBackoff: Duration(200 * time.Millisecond), MaxBackoff: Duration(10 * time.Second)},
		},
		API: API{Socket: "kazasud.sock", SocketMode: "0660"},
		Timeouts: Timeouts{
			Tap: Duration(60 * time.Second), Read: Duration(10 * time.Second), PIN: Duration(60 * time.Second),
			Verify: Duration(15 * time.Second), Relay: Duration(30 * time.Second), Remove: Duration(30 * time.Second),
		},
	}
}

// Default returns the embedded default configuration.
func Default() *Config {
	c, err := Parse("(default)", defaultTOML)
	if err != nil {
		// The embedded file is tested; reaching here is a build defect.
		panic("config: embedded default is invalid: " + err.Error())
	}
	return c
}

// Load reads and parses the file at path. A missing file gives an error
// wrapping [ErrNoConfig].
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("config: %s: %w", path, ErrNoConfig)
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	if len(data) > MaxSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("file larger than %d bytes", MaxSize)}
	}
	return Parse(path, data)
}

// LoadOrDefault is Load, falling back to [Default] only when path is empty
// or names no file; usedDefault reports the fallback. An invalid file is
// always an error.
func LoadOrDefault(path string) (c *Config, usedDefault bool, err error) {
	if path == "" {
		return Default(), true, nil
	}
	c, err = Load(path)
	if errors.Is(err, ErrNoConfig) {
		return Default(), true, nil
	}
	return c, false, err
}

// Parse decodes and validates a config file; name is used in errors.
func Parse(name string, data []byte) (*Config, error) {
	if len(data) > MaxSize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("file larger than %d bytes", MaxSize)}
	}
	c := builtin()
	md, err := toml.NewDecoder(strings.NewReader(string(data))).Decode(&c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: name, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
		}
		// Type mismatches come as plain errors; give them the same shape.
		if m := reTOMLErr.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{File: name, Line: line, Key: m[2], Msg: m[3]}
		}
		return nil, fmt.Errorf("config: %s: %w", name, err)
	}
	ix := indexKeys(string(data))
	v := &validator{file: name, ix: ix}

	// Unknown keys, outermost only ("relay.foo", not also "relay.foo.x").
	seen := map[string]int{}
	var unknown []string
	for _, k := range md.Undecoded() {
		ks := k.String()
		n := seen[ks]
		seen[ks]++
		skip := false
		for _, u := range unknown {
			if strings.HasPrefix(ks, u+".") {
				skip = true
			}
		}
		if skip {
			continue
		}
		unknown = append(unknown, ks)
		line := 0
		if ls := ix.plain[ks]; n < len(ls) {
			line = ls[n]
		}
		v.errs = append(v.errs, &Error{File: name, Line: line, Key: ks, Msg: "unknown key"})
	}
	if !md.IsDefined("version") {
		v.add("version", "required (version = %d)", Version)
	}
	v.check(&c)
	if len(v.errs) > 0 {
		sort.SliceStable(v.errs, func(i, j int) bool { return lineKey(v.errs[i]) < lineKey(v.errs[j]) })
		return nil, v.errs
	}
	for i, p := range c.Trust.PinnedRoots {
		c.Trust.PinnedRoots[i] = strings.ToLower(p)
	}
	return &c, nil
}

var reTOMLErr = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// lineKey orders errors by line, absent keys (line 0) last.
func lineKey(e *Error) int {
	if e.Line == 0 {
		return 1 << 30
	}
	return e.Line
}

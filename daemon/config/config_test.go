package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	c := Default()
	if c.Version != 1 || len(c.Readers) != 1 || c.Readers[0].Name != "sim0" || c.Readers[0].URI != "sim:mynumber" {
		t.Fatalf("default readers: %+v", c.Readers)
	}
	if !c.Trust.TestMode || !c.Revocation.FailClosed || c.Relay.Retry.MaxAttempts != 5 {
		t.Fatalf("default: %+v", c)
	}
	if c.Timeouts.PIN.D() != time.Minute {
		t.Fatalf("timeouts.pin = %v", c.Timeouts.PIN)
	}
	if got, want := c.Path("tls/ca.pem"), filepath.Join("kazasu-data", "tls/ca.pem"); got != want {
		t.Fatalf("Path = %q, want %q", got, want)
	}
	if c.Path("/abs") != "/abs" || c.Path("") != "" {
		t.Fatal("Path must keep absolute and empty paths")
	}
	if c.SocketFileMode() != 0o660 {
		t.Fatalf("socket mode %o", c.SocketFileMode())
	}
}

const minimal = `version = 1
terminal_id = "kz-1"
data_dir = "/var/lib/kazasu"

[[readers]]
name = "r0"
uri = "pn532_uart:/dev/ttyAMA0"

[trust]
roots_dir = "/etc/kazasu/roots"

[relay]
url = "https://issuance.example:8443"
ca = "ca.pem"
client_cert = "c.pem"
client_key = "k.pem"
`

func TestMinimal(t *testing.T) {
	c, err := Parse("kazasud.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != "info" || c.Timeouts.Tap.D() != time.Minute || c.API.Socket != "kazasud.sock" {
		t.Fatalf("builtin defaults not applied: %+v", c)
	}
	if c.Readers[0].ISODEP != "" || c.Readers[0].PollOrder != 0 {
		t.Fatalf("reader: %+v", c.Readers[0])
	}
}

func TestSortedReaders(t *testing.T) {
	src := strings.Replace(minimal, "[trust]", `[[readers]]
name = "r1"
uri = "sim:mynumber"
poll_order = 0

[[readers]]
name = "r2"
uri = "sim:phone"
poll_order = 5

[trust]`, 1)
	src = strings.Replace(src, `uri = "pn532_uart:/dev/ttyAMA0"`, "uri = \"pn532_uart:/dev/ttyAMA0\"\npoll_order = 3", 1)
	c, err := Parse("f", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range c.SortedReaders() {
		got = append(got, r.Name)
	}
	if strings.Join(got, ",") != "r1,r0,r2" {
		t.Fatalf("order %v", got)
	}
}

func TestBadConfigs(t *testing.T) {
	// Each case edits the minimal file: replace old with new (old "" appends).
	tests := []struct {
		name     string
		old, new string
		want     string // the first error, exactly
	}{
		{"unknown top-level key", "[[readers]]", "colour = \"blue\"\n[[readers]]", `config: f:5: colour: unknown key`},
		{"key appended after a table belongs to it", "", "colour = \"blue\"\n", `config: f:17: relay.colour: unknown key`},
		{"unknown key in table", `ca = "ca.pem"`, "ca = \"ca.pem\"\nproxy = \"x\"", `config: f:15: relay.proxy: unknown key`},
		{"unknown key in array of tables", `uri = "pn532_uart:/dev/ttyAMA0"`, "uri = \"pn532_uart:/dev/ttyAMA0\"\nspeed = 115200", `config: f:8: readers.speed: unknown key`},
		{"unknown table", "", "[extra]\na = 1\n", `config: f:17: extra: unknown key`},
		{"missing version", "version = 1\n", "", `config: f: version: required (version = 1)`},
		{"wrong version", "version = 1", "version = 2", `config: f:1: version: unsupported version 2 (this kazasud reads 1)`},
		{"bad terminal id", `terminal_id = "kz-1"`, `terminal_id = "kz 1"`, `config: f:2: terminal_id: must match [A-Za-z0-9._-]{1,64}`},
		{"syntax error", `data_dir = "/var/lib/kazasu"`, `data_dir = "/var/lib/kazasu`, `config: f:3: data_dir: strings cannot contain newlines`},
		{"type mismatch", `terminal_id = "kz-1"`, `terminal_id = 7`, `config: f:2: terminal_id: incompatible types: TOML value has type int64; destination has type string`},
		{"bare number duration", "", "[timeouts]\npin = 30\n", `config: f:18: timeouts.pin: invalid duration "30" (want e.g. "30s")`},
		{"duration too long", "", "[timeouts]\npin = \"11m\"\n", `config: f:18: timeouts.pin: must be between 100ms and 10m0s, not 11m0s`},
		{"reader uri", `uri = "pn532_uart:/dev/ttyAMA0"`, `uri = "/dev/ttyAMA0"`, `config: f:7: readers[0].uri: must be a reader URI like "sim:mynumber" or "pn532_uart:/dev/ttyAMA0"`},
		{"reader isodep", `uri = "pn532_uart:/dev/ttyAMA0"`, "uri = \"pn532_uart:/dev/ttyAMA0\"\nisodep = \"magic\"", `config: f:8: readers[0].isodep: must be auto, chip or host, not "magic"`},
		{"duplicate reader", "[trust]", "[[readers]]\nname = \"r0\"\nuri = \"sim:x\"\n\n[trust]", `config: f:10: readers[1].name: duplicate reader name "r0"`},
		{"no readers", "[[readers]]\nname = \"r0\"\nuri = \"pn532_uart:/dev/ttyAMA0\"\n", "", `config: f: readers: at least one reader is required (or a board whose profile gives the reader)`},
		{"unknown board", "[[readers]]\nname = \"r0\"\nuri = \"pn532_uart:/dev/ttyAMA0\"\n", "board = \"pi9\"\n", `config: f:5: board: boards: unsupported board id "pi9" (supported: pi3bplus, pi4, pi5, pi02w, cm4)`},
		{"missing reader uri (line of element)", `uri = "pn532_uart:/dev/ttyAMA0"`, ``, `config: f:5: readers[0].uri: must be a reader URI like "sim:mynumber" or "pn532_uart:/dev/ttyAMA0"`},
		{"pinned root not hex", `roots_dir = "/etc/kazasu/roots"`, `pinned_roots = ["abc"]`, `config: f:10: trust.pinned_roots[0]: must be a SHA-256 fingerprint (64 hex digits)`},
		{"no trust anchors", `roots_dir = "/etc/kazasu/roots"`, ``, `config: f:9: trust: no trust anchors: set roots_dir or pinned_roots (or test_mode for development)`},
		{"relay http", `url = "https://issuance.example:8443"`, `url = "http://issuance.example:8443"`, `config: f:13: relay.url: scheme must be https`},
		{"relay no client key", "client_key = \"k.pem\"\n", "", `config: f:12: relay.client_key: required (mutual TLS with a pinned CA)`},
		{"retry attempts", "", "[relay.retry]\nmax_attempts = 0\n", `config: f:18: relay.retry.max_attempts: must be between 1 and 20, not 0`},
		{"socket world-writable", "", "[api]\nsocket_mode = \"0666\"\n", `config: f:18: api.socket_mode: must not be world-writable`},
		{"socket mode not octal", "", "[api]\nsocket_mode = \"rw-\"\n", `config: f:18: api.socket_mode: must be an octal mode like "0660", not "rw-"`},
		{"api listen not loopback", "", "[api]\nlisten = \"0.0.0.0:8080\"\ntoken_file = \"t\"\n", `config: f:18: api.listen: must be a loopback address (127.0.0.1:port or [::1]:port), not "0.0.0.0:8080"`},
		{"api listen without token", "", "[api]\nlisten = \"127.0.0.1:8080\"\n", `config: f:17: api.token_file: required when api.listen is set (bearer token)`},
		{"log level", `data_dir = "/var/lib/kazasu"`, "data_dir = \"/var/lib/kazasu\"\nlog_level = \"loud\"", `config: f:4: log_level: must be debug, info, warn or error, not "loud"`},
		{"metrics listen", `data_dir = "/var/lib/kazasu"`, "data_dir = \"/var/lib/kazasu\"\nmetrics_listen = \"nowhere\"", `config: f:4: metrics_listen: must be host:port, not "nowhere"`},
		{"inline reader unknown key", "[[readers]]\nname = \"r0\"\nuri = \"pn532_uart:/dev/ttyAMA0\"\n", "readers = [\n  { name = \"a\", uri = \"sim:a\" },\n  { name = \"b\", uri = \"sim:b\", wat = 1 },\n]\n", `config: f:7: readers.wat: unknown key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := minimal
			if tt.old == "" {
				src += tt.new
			} else {
				if !strings.Contains(src, tt.old) {
					t.Fatalf("test bug: %q not in minimal", tt.old)
				}
				src = strings.Replace(src, tt.old, tt.new, 1)
			}
			c, err := Parse("f", []byte(src))
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			first := err
			var es Errors
			if errors.As(err, &es) {
				first = es[0]
			}
			if first.Error() != tt.want {
				t.Fatalf("error:\n got %s\nwant %s\n(all: %v)", first, tt.want, err)
			}
			if errors.Is(err, ErrNoConfig) {
				t.Fatal("invalid config must not be ErrNoConfig")
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "none.toml")
	if _, err := Load(missing); !errors.Is(err, ErrNoConfig) {
		t.Fatalf("missing file: %v", err)
	}
	c, usedDefault, err := LoadOrDefault(missing)
	if err != nil || !usedDefault || c.Readers[0].URI != "sim:mynumber" {
		t.Fatalf("LoadOrDefault(missing) = %v %v %v", c, usedDefault, err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("version = 1\nbogus = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrDefault(bad); err == nil || errors.Is(err, ErrNoConfig) || !strings.Contains(err.Error(), bad+":2: bogus: unknown key") {
		t.Fatalf("invalid file must be an error, not a fallback: %v", err)
	}
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, usedDefault, err := LoadOrDefault(good); err != nil || usedDefault || c.TerminalID != "kz-1" {
		t.Fatalf("good: %v %v %v", c, usedDefault, err)
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, make([]byte, MaxSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("big: %v", err)
	}
}

func TestKeyIndex(t *testing.T) {
	src := "a = 1\n[t]\n'q.k' = \"\"\"x\ny\"\"\"\nb = [1,\n 2]\n[[arr]]\nx = 1\n[[arr]]\nx = 2\n[arr.sub]\ny = { z = 1 }\n"
	ix := indexKeys(src)
	for k, want := range map[string]int{"a": 1, "t": 2, "t.q.k": 3, "t.b": 5, "t.b[1]": 6, "arr[1].x": 10, "arr[0].x": 8, "arr[1].sub.y.z": 12} {
		if got := ix.line(k); got != want {
			t.Errorf("line(%q) = %d, want %d (index %v)", k, got, want, ix.lines)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add(defaultTOML)
	f.Add([]byte("readers = [{ name = \"a\", uri = 'sim:x', x = [[{}]] }]\n[a.\"b\".c]\nd = '''x'''"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz", data)
		if err == nil && (c.Version != Version || len(c.Readers) == 0) {
			t.Fatalf("accepted invalid config: %+v", c)
		}
		indexKeys(string(data)) // must terminate without panicking on any input
	})
}

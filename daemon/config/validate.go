package config

import (
	"kazasu/boards"

	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	reTerminalID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	reName       = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	reScheme     = regexp.MustCompile(`^[a-z][a-z0-9_+.-]*:`)
)

type validator struct {
	file string
	ix   *keyIndex
	errs Errors
}

// add records an error at key, using the line of the key or, if the key is
// absent from the file, of its nearest present parent.
func (v *validator) add(key, format string, args ...any) {
	line := 0
	for k := key; k != "" && line == 0; k = parentKey(k) {
		line = v.ix.line(k)
	}
	v.errs = append(v.errs, &Error{File: v.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func parentKey(k string) string {
	i := strings.LastIndexAny(k, ".[")
	if i <= 0 {
		return ""
	}
	return k[:i]
}

func (v *validator) duration(key string, d Duration, min, max time.Duration) {
	if d.D() < min || d.D() > max {
		v.add(key, "must be between %v and %v, not %v", min, max, d.D())
	}
}

func (v *validator) check(c *Config) {
	if c.Version != Version && v.ix.line("version") > 0 {
		v.add("version", "unsupported version %d (this kazasud reads %d)", c.Version, Version)
	}
	if !reTerminalID.MatchString(c.TerminalID) {
		v.add("terminal_id", "must match [A-Za-z0-9._-]{1,64}")
	}
	if c.Board != "" && !reName.MatchString(c.Board) {
		v.add("board", "must match [a-z0-9_-]{1,32}")
	}
	if c.DataDir == "" {
		v.add("data_dir", "required")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		v.add("log_level", "must be debug, info, warn or error, not %q", c.LogLevel)
	}
	if c.MetricsListen != "" {
		if err := checkHostPort(c.MetricsListen); err != nil {
			v.add("metrics_listen", "%v", err)
		}
	}

	if c.Board != "" {
		p, err := boards.ByID(c.Board)
		if err != nil {
			v.add("board", "%v", err)
		} else if c.BoardBus != "" {
			b, err := boards.ParseBus(c.BoardBus)
			if err != nil {
				v.add("board_bus", "%v", err)
			} else if _, err := p.Wiring(b); err != nil {
				v.add("board_bus", "%v", err)
			}
		}
	} else if c.BoardBus != "" {
		v.add("board_bus", "needs board")
	}
	if len(c.Readers) == 0 && c.Board == "" {
		v.add("readers", "at least one reader is required (or a board whose profile gives the reader)")
	}
	names := map[string]bool{}
	for i, r := range c.Readers {
		k := fmt.Sprintf("readers[%d]", i)
		if !reName.MatchString(r.Name) {
			v.add(k+".name", "must match [a-z0-9_-]{1,32}")
		} else if names[r.Name] {
			v.add(k+".name", "duplicate reader name %q", r.Name)
		}
		names[r.Name] = true
		if !reScheme.MatchString(r.URI) || strings.ContainsAny(r.URI, " \t\r\n") || len(r.URI) > 512 {
			v.add(k+".uri", "must be a reader URI like \"sim:mynumber\" or \"pn532_uart:/dev/ttyAMA0\"")
		}
		if r.PollOrder < 0 {
			v.add(k+".poll_order", "must be >= 0")
		}
		switch r.ISODEP {
		case "", "auto", "chip", "host":
		default:
			v.add(k+".isodep", "must be auto, chip or host, not %q", r.ISODEP)
		}
	}

	seen := map[string]bool{}
	for i, p := range c.Trust.PinnedRoots {
		k := fmt.Sprintf("trust.pinned_roots[%d]", i)
		b, err := hex.DecodeString(p)
		switch {
		case err != nil || len(b) != 32:
			v.add(k, "must be a SHA-256 fingerprint (64 hex digits)")
		case seen[strings.ToLower(p)]:
			v.add(k, "duplicate fingerprint")
		}
		seen[strings.ToLower(p)] = true
	}
	if !c.Trust.TestMode && c.Trust.RootsDir == "" && len(c.Trust.PinnedRoots) == 0 {
		v.add("trust", "no trust anchors: set roots_dir or pinned_roots (or test_mode for development)")
	}

	if c.Revocation.Store == "" {
		v.add("revocation.store", "required")
	}
	v.duration("revocation.max_staleness", c.Revocation.MaxStaleness, time.Minute, 31*24*time.Hour)

	if u, err := url.Parse(c.Relay.URL); err != nil || c.Relay.URL == "" {
		v.add("relay.url", "required: the issuance service URL (https://host:port)")
	} else if u.Scheme != "https" {
		v.add("relay.url", "scheme must be https")
	} else if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		v.add("relay.url", "must be https://host[:port][/path] without user, query or fragment")
	}
	for _, kv := range []struct{ k, v string }{
		{"relay.ca", c.Relay.CA}, {"relay.client_cert", c.Relay.ClientCert}, {"relay.client_key", c.Relay.ClientKey},
	} {
		if kv.v == "" {
			v.add(kv.k, "required (mutual TLS with a pinned CA)")
		}
	}
	v.duration("relay.connect_timeout", c.Relay.ConnectTimeout, 100*time.Millisecond, 5*time.Minute)
	v.duration("relay.request_timeout", c.Relay.RequestTimeout, 100*time.Millisecond, 5*time.Minute)
	if n := c.Relay.Retry.MaxAttempts; n < 1 || n > 20 {
		v.add("relay.retry.max_attempts", "must be between 1 and 20, not %d", n)
	}
	v.duration("relay.retry.initial_backoff", c.Relay.Retry.InitialBackoff, time.Millisecond, time.Minute)
	v.duration("relay.retry.max_backoff", c.Relay.Retry.MaxBackoff, time.Millisecond, time.Hour)
	if c.Relay.Retry.MaxBackoff < c.Relay.Retry.InitialBackoff {
		v.add("relay.retry.max_backoff", "must not be below initial_backoff")
	}

	if c.API.Socket == "" {
		v.add("api.socket", "required")
	}
	if m, err := parseMode(c.API.SocketMode); err != nil {
		v.add("api.socket_mode", "%v", err)
	} else if m&0o002 != 0 {
		v.add("api.socket_mode", "must not be world-writable")
	}
	if c.API.Listen != "" {
		if err := checkLoopback(c.API.Listen); err != nil {
			v.add("api.listen", "%v", err)
		}
		if c.API.TokenFile == "" {
			v.add("api.token_file", "required when api.listen is set (bearer token)")
		}
	}
	if c.API.KioskListen != "" {
		if err := checkLoopback(c.API.KioskListen); err != nil {
			v.add("api.kiosk_listen", "%v", err)
		}
	}

	for _, d := range []struct {
		k string
		d Duration
	}{
		{"timeouts.tap", c.Timeouts.Tap}, {"timeouts.read", c.Timeouts.Read}, {"timeouts.pin", c.Timeouts.PIN},
		{"timeouts.verify", c.Timeouts.Verify}, {"timeouts.relay", c.Timeouts.Relay}, {"timeouts.remove", c.Timeouts.Remove},
	} {
		v.duration(d.k, d.d, 100*time.Millisecond, 10*time.Minute)
	}
}

func parseMode(s string) (os.FileMode, error) {
	if len(s) < 3 || len(s) > 4 {
		return 0, fmt.Errorf("must be an octal mode like \"0660\", not %q", s)
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return 0, fmt.Errorf("must be an octal mode like \"0660\", not %q", s)
	}
	return os.FileMode(n), nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("must be host:port, not %q", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		return fmt.Errorf("host must be an IP address or localhost, not %q", host)
	}
	return nil
}

func checkLoopback(s string) error {
	if err := checkHostPort(s); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(s)
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("must be a loopback address (127.0.0.1:port or [::1]:port), not %q", s)
	}
	return nil
}

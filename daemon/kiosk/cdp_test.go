//go:build linux

package kiosk_test

// A headless Chromium driven over the DevTools protocol with a minimal
// WebSocket client (RFC 6455, client side only: what CDP needs).

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// chromiumPath finds Debian's chromium; without it the test skips, unless
// KAZASU_REQUIRE_TOOLS=1 (CI), where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("KAZASU_REQUIRE_TOOLS") == "1" {
		t.Fatal("chromium is not installed (KAZASU_REQUIRE_TOOLS=1): install it (tools/scripts/packages.sh)")
	}
	t.Skip("chromium is not installed")
	return ""
}

// browser is one headless Chromium with one page.
type browser struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	page   *cdpConn
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var reDevTools = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// startBrowser starts chromium on about:blank and attaches to its page.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	bin := chromiumPath(t)
	dir := t.TempDir()
	cmd := exec.Command(bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-proxy-server", "--disable-dev-shm-usage", "--hide-scrollbars", "--lang=ja", "--window-size=1024,768",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--user-data-dir="+dir, "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // chromium's helpers die with it
	cmd.Env = append(os.Environ(), "HOME="+dir)
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &browser{cmd: cmd, stderr: &lockedBuffer{}}
	exited := make(chan struct{})
	wsURL := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(b.stderr, line)
			if m := reDevTools.FindStringSubmatch(line); m != nil {
				select {
				case wsURL <- m[1]:
				default:
				}
			}
		}
		io.Copy(b.stderr, pr)
	}()
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		if b.page != nil {
			b.page.close()
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	var ws string
	select {
	case ws = <-wsURL:
	case <-exited:
		t.Fatalf("chromium exited at start:\n%s", b.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("chromium did not start its DevTools server:\n%s", b.stderr)
	}
	u, err := url.Parse(ws)
	if err != nil {
		t.Fatal(err)
	}
	// The page target of about:blank.
	var pageWS string
	for deadline := time.Now().Add(15 * time.Second); pageWS == ""; {
		var targets []struct {
			Type string `json:"type"`
			URL  string `json:"url"`
			WS   string `json:"webSocketDebuggerUrl"`
		}
		resp, err := http.Get("http://" + u.Host + "/json/list")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&targets)
			resp.Body.Close()
		}
		for _, tg := range targets {
			if tg.Type == "page" && tg.WS != "" {
				pageWS = tg.WS
				break
			}
		}
		if pageWS == "" {
			if time.Now().After(deadline) {
				t.Fatalf("no page target (%v):\n%s", err, b.stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	b.page, err = dialCDP(pageWS)
	if err != nil {
		t.Fatalf("%v\n%s", err, b.stderr)
	}
	// Page errors are reported as events (see pageErrors).
	for _, m := range []string{"Runtime.enable", "Log.enable"} {
		if err := b.page.call(m, map[string]any{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The kiosk's screen: a 1024×768 viewport (--window-size sets the
	// window, whose viewport is smaller).
	if err := b.page.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 1024, "height": 768, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		t.Fatal(err)
	}
	return b
}

// navigate loads url in the page.
func (b *browser) navigate(t *testing.T, u string) {
	t.Helper()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := b.page.call("Page.navigate", map[string]any{"url": u}, &res); err != nil {
		t.Fatal(err)
	}
	if res.ErrorText != "" {
		t.Fatalf("navigate %s: %s", u, res.ErrorText)
	}
}

// eval evaluates a JavaScript expression and decodes its (JSON) value.
func (b *browser) eval(t *testing.T, expr string, v any) {
	t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := b.page.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		t.Fatalf("%v\nchromium:\n%s", err, b.stderr)
	}
	if res.Exception != nil {
		t.Fatalf("evaluate %q: %s %s", expr, res.Exception.Text, res.Exception.Exception.Description)
	}
	if v != nil {
		if err := json.Unmarshal(res.Result.Value, v); err != nil {
			t.Fatalf("evaluate %q: %v (%s)", expr, err, res.Result.Value)
		}
	}
}

// pageErrors returns the page's errors reported since the last call:
// uncaught exceptions, console errors and browser errors other than
// failed network requests (some scenarios refuse requests on purpose),
// e.g. Content-Security-Policy violations.
func (b *browser) pageErrors(t *testing.T) []string {
	t.Helper()
	b.eval(t, "0", nil) // collect the events queued so far
	var errs []string
	for _, ev := range b.page.events {
		switch ev.Method {
		case "Runtime.exceptionThrown":
			var p struct {
				Details struct {
					Text      string `json:"text"`
					Exception struct {
						Description string `json:"description"`
					} `json:"exception"`
				} `json:"exceptionDetails"`
			}
			json.Unmarshal(ev.Params, &p)
			errs = append(errs, "exception: "+p.Details.Text+" "+p.Details.Exception.Description)
		case "Runtime.consoleAPICalled":
			var p struct {
				Type string            `json:"type"`
				Args []json.RawMessage `json:"args"`
			}
			json.Unmarshal(ev.Params, &p)
			if p.Type == "error" || p.Type == "warning" || p.Type == "assert" {
				errs = append(errs, "console."+p.Type+": "+fmt.Sprint(len(p.Args))+" args")
			}
		case "Log.entryAdded":
			var p struct {
				Entry struct {
					Source string `json:"source"`
					Level  string `json:"level"`
					Text   string `json:"text"`
					URL    string `json:"url"`
				} `json:"entry"`
			}
			json.Unmarshal(ev.Params, &p)
			if p.Entry.Level == "error" && p.Entry.Source != "network" {
				errs = append(errs, p.Entry.Source+": "+p.Entry.Text+" "+p.Entry.URL)
			}
		}
	}
	b.page.events = b.page.events[:0]
	return errs
}

// screenshot captures the page as PNG.
func (b *browser) screenshot(t *testing.T) []byte {
	t.Helper()
	var res struct {
		Data string `json:"data"`
	}
	if err := b.page.call("Page.captureScreenshot", map[string]any{"format": "png"}, &res); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		t.Fatal(err)
	}
	return png
}

// cdpConn is a DevTools protocol session over a WebSocket.
type cdpConn struct {
	conn   net.Conn
	br     *bufio.Reader
	id     int
	events []cdpEvent // received while waiting for answers
}

type cdpEvent struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func dialCDP(wsURL string) (*cdpConn, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// No Origin header: Chromium only accepts WebSocket clients without one
	// (or with an allowed one).
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", u.RequestURI(), u.Host, key)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("cdp: handshake: %w", err)
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		conn.Close()
		return nil, fmt.Errorf("cdp: handshake refused: %s", resp.Status)
	}
	conn.SetDeadline(time.Time{})
	return &cdpConn{conn: conn, br: br}, nil
}

func (c *cdpConn) close() { c.conn.Close() }

// writeFrame sends one masked frame (clients must mask).
func (c *cdpConn) writeFrame(op byte, payload []byte) error {
	hdr := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xffff:
		hdr = append(hdr, 0x80|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	masked := make([]byte, len(payload))
	for i, p := range payload {
		masked[i] = p ^ mask[i%4]
	}
	_, err := c.conn.Write(append(hdr, masked...))
	return err
}

// readMessage reads one whole text or binary message, answering pings.
func (c *cdpConn) readMessage() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(c.br, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(c.br, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if n > 64<<20 {
			return nil, fmt.Errorf("cdp: frame of %d bytes", n)
		}
		var mask []byte
		if h[1]&0x80 != 0 {
			mask = make([]byte, 4)
			if _, err := io.ReadFull(c.br, mask); err != nil {
				return nil, err
			}
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.br, payload); err != nil {
			return nil, err
		}
		for i := range payload {
			if mask != nil {
				payload[i] ^= mask[i%4]
			}
		}
		switch op {
		case 0x8:
			return nil, errors.New("cdp: connection closed by chromium")
		case 0x9:
			if err := c.writeFrame(0xA, payload); err != nil {
				return nil, err
			}
			continue
		case 0xA:
			continue
		}
		msg = append(msg, payload...)
		if fin {
			return msg, nil
		}
	}
}

// call sends a command and waits for its answer (events are skipped).
func (c *cdpConn) call(method string, params any, result any) error {
	c.id++
	id := c.id
	req, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return err
	}
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.conn.SetDeadline(time.Time{})
	if err := c.writeFrame(0x1, req); err != nil {
		return fmt.Errorf("cdp: %s: %w", method, err)
	}
	for {
		msg, err := c.readMessage()
		if err != nil {
			return fmt.Errorf("cdp: %s: %w", method, err)
		}
		var ans struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(msg, &ans); err != nil {
			return fmt.Errorf("cdp: %s: %w", method, err)
		}
		if ans.ID == 0 && ans.Method != "" {
			c.events = append(c.events, cdpEvent{ans.Method, ans.Params})
			continue
		}
		if ans.ID != id {
			continue // the answer to an abandoned call
		}
		if ans.Error != nil {
			return fmt.Errorf("cdp: %s: %d %s", method, ans.Error.Code, strings.TrimSpace(ans.Error.Message))
		}
		if result != nil {
			return json.Unmarshal(ans.Result, result)
		}
		return nil
	}
}

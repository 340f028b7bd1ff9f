//go:build linux

package kiosk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kazasu/daemon/api"
	"kazasu/daemon/engine"
	"kazasu/daemon/engine/enginetest"
	"kazasu/daemon/kiosk"
	"kazasu/drivers/reader"
	"kazasu/drivers/sim/card"
)

// A real terminal in process: the engine on a simulated reader, the
// reference issuance service over mutual TLS, the validator trusting the
// simulated tokens' test hierarchy (as in daemon/engine's tests).

type terminal struct {
	eng      *engine.Engine
	sim      *reader.Sim            // the first reader's
	sims     map[string]*reader.Sim // by reader name
	url      string                 // the kiosk page
	quickURL string                 // the kiosk page with a short ResetAfter
	issuer   *httptest.Server       // the issuance service
	h        *enginetest.Harness
	// noEvents makes the API refuse event streams (503), so the page
	// must follow transactions by polling.
	noEvents atomic.Bool
	refused  atomic.Int32 // event streams refused
	// cutStreams ends every event stream after its first event and
	// refuses status polls, so the page gets through only by reconnecting.
	cutStreams atomic.Bool
	streams    atomic.Int32 // event streams opened
}

// newTerminal starts a terminal with simulated readers of these names
// (default: one, sim0).
func newTerminal(t *testing.T, names ...string) *terminal {
	t.Helper()
	if len(names) == 0 {
		names = []string{"sim0"}
	}
	h := enginetest.New(t, enginetest.Options{
		Readers:  names,
		Services: []string{"juminhyo", "inkan", "kazei"},
		// Generous: the browser, not a person, is on the other side,
		// and these bound the test only when something is broken.
		Timeouts: engine.Timeouts{Tap: 60 * time.Second, PIN: 60 * time.Second, Removal: 60 * time.Second},
	})
	term := &terminal{h: h, eng: h.Engine, sim: h.Sim, sims: h.Sims, issuer: h.Server}
	term.waitReaderReady(t)

	a, err := api.New(api.Options{Engine: term.eng})
	if err != nil {
		t.Fatal(err)
	}
	apiH := a.Handler()
	gate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if term.noEvents.Load() && strings.HasSuffix(r.URL.Path, "/events") {
			term.refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"too_many_streams","message":"too many event streams open"}}`)
			return
		}
		if term.cutStreams.Load() && r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/transactions/") && strings.Count(r.URL.Path, "/") == 3 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"busy","message":"engine busy"}}`)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/events") {
			term.streams.Add(1)
			if term.cutStreams.Load() {
				ctx, cancel := context.WithCancel(r.Context())
				defer cancel()
				w, r = &cutAfterEvent{ResponseWriter: w, cancel: cancel}, r.WithContext(ctx)
			}
		}
		apiH.ServeHTTP(w, r)
	})
	ks := httptest.NewServer(kiosk.Handler(gate, kiosk.Options{TestHooks: true, ResetAfter: -1}))
	t.Cleanup(ks.Close)
	term.url = ks.URL + "/"
	// The same, returning to the menu shortly after the end.
	qs := httptest.NewServer(kiosk.Handler(gate, kiosk.Options{TestHooks: true, ResetAfter: 300 * time.Millisecond}))
	t.Cleanup(qs.Close)
	term.quickURL = qs.URL + "/"
	return term
}

// cutAfterEvent ends an event stream after its first event: later writes
// fail and the request is cancelled.
type cutAfterEvent struct {
	http.ResponseWriter
	cancel context.CancelFunc
	cut    bool
}

func (c *cutAfterEvent) Write(b []byte) (int, error) {
	if c.cut {
		return 0, errors.New("stream cut by the test")
	}
	n, err := c.ResponseWriter.Write(b)
	if bytes.Contains(b, []byte("event: transaction")) {
		c.cut = true
		c.cancel()
	}
	return n, err
}

func (c *cutAfterEvent) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// waitReaderReady waits until every reader is ready (no transaction).
func (term *terminal) waitReaderReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rs := term.eng.Readers(context.Background())
		ready := len(rs) == len(term.sims)
		for _, r := range rs {
			ready = ready && r.State == api.ReaderReady
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reader not ready: %+v", rs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (term *terminal) lastTicket() string {
	rc := term.h.Receipts()
	if len(rc) == 0 {
		return ""
	}
	return rc[len(rc)-1].Ticket
}

// pageState is what the page shows.
type pageState struct {
	Screen string `json:"screen"` // body[data-screen]
	State  string `json:"state"`  // the transaction's state
	Final  string `json:"final"`
	Tries  string `json:"tries"`
	Reason string `json:"reason"`
	Text   string `json:"text"` // the visible text of the page
	Ticket string `json:"ticket"`
	Dialog bool   `json:"dialog"` // the last-try dialog is open
	HTML   string `json:"html"`
	Hook   string `json:"hook"`   // test hook steps done
	Filled int    `json:"filled"` // PIN digits shown as ●
}

const stateJS = `(() => {
  const b = document.body, d = document.getElementById('last-try-dialog');
  if (!b || !d || !document.querySelector('main')) return {screen: 'not-loaded'};
  return {
    screen: b.dataset.screen || '', state: b.dataset.state || '', final: b.dataset.final || '',
    tries: b.dataset.triesLeft || '', reason: b.dataset.reason || '',
    text: b.innerText,
    ticket: document.getElementById('ticket').textContent,
    dialog: d.open, html: document.documentElement.outerHTML,
    hook: document.documentElement.dataset.hookDone || '',
    filled: document.querySelectorAll('#pin-display .dot.filled').length,
  };
})()`

// waitPage polls the page until ok; the deadline only bounds a broken run.
func (b *browser) waitPage(t *testing.T, what string, ok func(p pageState) bool) pageState {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var p pageState
	for {
		p = pageState{}
		b.eval(t, stateJS, &p)
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("page never showed %s; it shows screen %q state %q final %q tries %q reason %q hook %q:\n%s",
				what, p.Screen, p.State, p.Final, p.Tries, p.Reason, p.Hook, p.Text)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// click dispatches a click on the element selected, as a touch would.
func (b *browser) click(t *testing.T, selector string) {
	t.Helper()
	var ok bool
	b.eval(t, fmt.Sprintf(`(() => {
  const el = document.querySelector(%q);
  if (!el || el.disabled || el.getClientRects().length === 0) return false;
  el.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, view: window}));
  return true;
})()`, selector), &ok)
	if !ok {
		t.Fatalf("%s is not on screen to click", selector)
	}
}

// noErrors fails on page errors since the last check.
func (b *browser) noErrors(t *testing.T) {
	t.Helper()
	for _, e := range b.pageErrors(t) {
		t.Errorf("page error: %s", e)
	}
}

// key presses a key as a keyboard would.
func (b *browser) key(t *testing.T, key string) {
	t.Helper()
	ev := map[string]any{"type": "keyDown", "key": key}
	switch key {
	case "Enter":
		ev["code"], ev["windowsVirtualKeyCode"], ev["text"] = "Enter", 13, "\r"
	case "Backspace":
		ev["code"], ev["windowsVirtualKeyCode"] = "Backspace", 8
	default:
		ev["code"], ev["windowsVirtualKeyCode"], ev["text"] = "Digit"+key, int(key[0]), key
	}
	for _, typ := range []string{"keyDown", "keyUp"} {
		ev["type"] = typ
		if typ == "keyUp" {
			delete(ev, "text")
		}
		if err := b.page.call("Input.dispatchKeyEvent", ev, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func mustContain(t *testing.T, p pageState, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if !strings.Contains(p.Text, s) {
			t.Errorf("the page does not show %q; it shows:\n%s", s, p.Text)
		}
	}
}

// checkScreenshot takes a screenshot and checks it is a real picture of
// the page: a 1024×768 PNG with many colours (text, not a blank page). With
// KAZASU_ARTIFACTS set it is saved there.
func checkScreenshot(t *testing.T, b *browser, name string) {
	t.Helper()
	raw := b.screenshot(t)
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if r := img.Bounds(); r.Dx() != 1024 || r.Dy() != 768 {
		t.Errorf("screenshot %s is %v, want 1024×768", name, r)
	}
	colours := map[[3]uint32]bool{}
	var dark int
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 2 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			if r>>8 < 80 && g>>8 < 80 && bl>>8 < 80 {
				dark++
			}
		}
	}
	// Anti-aliased text alone gives hundreds of shades; a blank or
	// single-colour page gives a handful.
	if len(colours) < 64 || dark < 500 {
		t.Errorf("screenshot %s looks empty: %d colours, %d dark pixels", name, len(colours), dark)
	}
	if dir := os.Getenv("KAZASU_ARTIFACTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "kiosk-"+name+".png"), raw, 0o644); err != nil {
			t.Error(err)
		}
	}
}

func newCard(t *testing.T, opts card.Options) *card.Token {
	t.Helper()
	return newToken(t, card.KindMyNumber, opts)
}

func newToken(t *testing.T, kind card.Kind, opts card.Options) *card.Token {
	t.Helper()
	if opts.Seed == "" {
		opts.Seed = "kiosk"
	}
	tok, err := card.New(kind, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestBrowser opens the kiosk page in headless Chromium against a real
// engine and lets the test hook press the page's buttons.
func TestBrowser(t *testing.T) {
	chromiumPath(t) // skip (or fail in CI) before building anything
	term := newTerminal(t)
	b := startBrowser(t) // after: its cleanup (kill) runs before the servers close
	n := 0
	// open loads the page with a test hook script for a new scenario; tok
	// is taken off the reader and any transaction left cancelled at the
	// end, so a failed scenario does not hold up the next.
	open := func(t *testing.T, script string, tok *card.Token) {
		t.Helper()
		n++
		t.Cleanup(func() {
			b.noErrors(t)
			term.sim.Remove(tok)
			for _, rd := range term.eng.Readers(context.Background()) {
				if rd.TransactionID != "" {
					term.eng.Cancel(context.Background(), rd.TransactionID)
				}
			}
		})
		term.waitReaderReady(t)
		b.navigate(t, fmt.Sprintf("%s?run=%d#script=%s", term.url, n, script))
	}

	t.Run("card", func(t *testing.T) {
		const pin = "2580"
		tok := newCard(t, card.Options{AuthPIN: pin})
		open(t, "juminhyo,"+pin, tok)
		p := b.waitPage(t, "the tap prompt", func(p pageState) bool { return p.Screen == "waiting-for-tap" })
		mustContain(t, p, "かざしてください", "Hold your My Number Card or smartphone", "マイナンバーカード", "スマートフォン", "住民票の写し")
		checkScreenshot(t, b, "tap")
		term.sim.Tap(tok)
		p = b.waitPage(t, "the result with remove-card", func(p pageState) bool { return p.State == "remove-card" || p.Final == "1" })
		if p.State != "remove-card" || p.Ticket == "" {
			t.Fatalf("want the ticket and remove-card, got state %q reason %q:\n%s", p.State, p.Reason, p.Text)
		}
		if want := term.lastTicket(); p.Ticket != want {
			t.Fatalf("page shows ticket %q, the service issued %q", p.Ticket, want)
		}
		mustContain(t, p, "受け付けました", "受付番号", p.Ticket, "カードまたはスマートフォンをお取りください", "Please take your card or phone")
		if strings.Contains(strings.ReplaceAll(p.HTML, p.Ticket, ""), pin) {
			t.Fatal("the PIN is in the page's DOM")
		}
		if p.Hook != "2" {
			t.Fatalf("test hook performed %q steps, want 2", p.Hook)
		}
		checkScreenshot(t, b, "done")
		term.sim.Remove(tok)
		p = b.waitPage(t, "the end", func(p pageState) bool { return p.Final == "1" })
		if p.State != "remove-card" || p.Ticket == "" || strings.Contains(p.Text, "お取りください") {
			t.Fatalf("after removal: state %q ticket %q:\n%s", p.State, p.Ticket, p.Text)
		}
		mustContain(t, p, "受け付けました", "最初の画面に戻る")
		b.click(t, "#again")
		p = b.waitPage(t, "the menu", func(p pageState) bool { return p.Screen == "home" })
		mustContain(t, p, "住民票の写し", "印鑑登録証明書", "課税証明書")
		checkScreenshot(t, b, "home")
	})

	t.Run("wrong PIN", func(t *testing.T) {
		tok := newCard(t, card.Options{})
		open(t, "inkan,0000", tok)
		b.waitPage(t, "the tap prompt", func(p pageState) bool { return p.Screen == "waiting-for-tap" })
		term.sim.Tap(tok)
		p := b.waitPage(t, "tries left", func(p pageState) bool {
			return p.Final == "1" || p.Screen == "pin-required" && p.Tries == "2"
		})
		if p.Screen != "pin-required" {
			t.Fatalf("ended: state %q reason %q", p.State, p.Reason)
		}
		mustContain(t, p, "暗証番号が正しくありません", "あと2回入力できます", "2 tries left", "印鑑登録証明書")
		if n, _ := tok.Tries(card.AuthPIN); n != 2 {
			t.Fatalf("card counter %d, want 2", n)
		}
		// Typing shows ● per digit and nothing else.
		b.click(t, `#pad [data-key="9"]`)
		b.click(t, `#pad [data-key="7"]`)
		p = b.waitPage(t, "two digits typed", func(p pageState) bool { return p.Filled == 2 })
		if strings.Contains(p.HTML, "97") || strings.Contains(p.Text, "97") {
			t.Fatal("typed digits are in the page")
		}
		checkScreenshot(t, b, "wrong-pin")
		// Cancel with the card still on the reader.
		b.click(t, "#screen-pin-required [data-action=cancel]")
		p = b.waitPage(t, "cancelled", func(p pageState) bool { return p.State == "remove-card" || p.Final == "1" })
		if p.Reason != "cancelled" {
			t.Fatalf("reason %q, want cancelled:\n%s", p.Reason, p.Text)
		}
		mustContain(t, p, "中止しました", "お取りください")
		term.sim.Remove(tok)
		b.waitPage(t, "the end", func(p pageState) bool { return p.Final == "1" })
	})

	t.Run("last try", func(t *testing.T) {
		tok := newCard(t, card.Options{AuthPINTries: 1})
		// A wrong PIN typed, the dialog answered "re-enter", the right one
		// typed: the dialog must be up again, nothing sent yet.
		open(t, "kazei,0000,reenter,1234", tok)
		b.waitPage(t, "the tap prompt", func(p pageState) bool { return p.Screen == "waiting-for-tap" })
		term.sim.Tap(tok)
		p := b.waitPage(t, "the last-try dialog", func(p pageState) bool { return p.Dialog && p.Hook == "4" || p.Final == "1" })
		if !p.Dialog || p.Tries != "1" {
			t.Fatalf("no last-try dialog: state %q tries %q:\n%s", p.State, p.Tries, p.Text)
		}
		mustContain(t, p, "最後の入力です", "この暗証番号で続ける")
		checkScreenshot(t, b, "last-try")
		// Nothing was sent before the person confirmed.
		if n, _ := tok.Tries(card.AuthPIN); n != 1 {
			t.Fatalf("card counter %d before the confirmation", n)
		}
		b.click(t, "#last-try-dialog [data-dialog=confirm]")
		p = b.waitPage(t, "the result", func(p pageState) bool { return p.State == "remove-card" || p.Final == "1" })
		if p.Ticket == "" || p.Ticket != term.lastTicket() {
			t.Fatalf("after the confirmed last try: state %q reason %q ticket %q:\n%s", p.State, p.Reason, p.Ticket, p.Text)
		}
		mustContain(t, p, "課税証明書")
		term.sim.Remove(tok)
		b.waitPage(t, "the end", func(p pageState) bool { return p.Final == "1" })
	})

	t.Run("blocked", func(t *testing.T) {
		tok := newCard(t, card.Options{AuthPINTries: card.TriesBlocked})
		open(t, "juminhyo", tok)
		b.waitPage(t, "the tap prompt", func(p pageState) bool { return p.Screen == "waiting-for-tap" })
		term.sim.Tap(tok)
		p := b.waitPage(t, "the failure", func(p pageState) bool { return p.State == "remove-card" || p.Final == "1" })
		if p.Reason != "pin_blocked" {
			t.Fatalf("reason %q", p.Reason)
		}
		mustContain(t, p, "市区町村の窓口でPINの初期化が必要です", "pin_blocked")
		checkScreenshot(t, b, "blocked")
		term.sim.Remove(tok)
		b.waitPage(t, "the end", func(p pageState) bool { return p.Final == "1" })
	})
	// Failures show what happened and what to do.
	for _, c := range []struct {
		name   string
		kind   card.Kind
		remove bool // take the card away at the PIN prompt
		reason string
		texts  []string
	}{
		{"not JPKI", card.KindNonJPKI, false, "not_jpki", []string{"このカードは使えません", "マイナンバーカード"}},
		{"Juki card", card.KindJuki, false, "unsupported_token", []string{"対応していないカードまたは端末です", "not supported"}},
		{"removed", card.KindMyNumber, true, "card_removed", []string{"離れました", "もう一度最初からお試しください", "最初の画面に戻る"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := newToken(t, c.kind, card.Options{})
			open(t, "juminhyo", tok)
			b.waitPage(t, "the tap prompt", func(p pageState) bool { return p.Screen == "waiting-for-tap" })
			term.sim.Tap(tok)
			if c.remove {
				b.waitPage(t, "the PIN pad", func(p pageState) bool { return p.Screen == "pin-required" || p.Final == "1" })
				term.sim.Remove(tok)
			}
			p := b.waitPage(t, "the failure", func(p pageState) bool { return p.State == "remove-card" || p.Final == "1" })
			if p.Reason != c.reason {
				t.Fatalf("reason %q, want %q:\n%s", p.Reason, c.reason, p.Text)
			}
			mustContain(t, p, c.texts...)
			term.sim.Remove(tok)
			b.waitPage(t, "the end", func(p pageState) bool { return p.Final == "1" })
		})
	}

	// A page reloaded in the middle of a transaction picks it up again.
	t.Run("reload", func(t *testing.T) {
		tok := newCard(t, card.Options{})
		open(t, "juminhyo", tok)
		b.waitPage(t, "the tap prompt", func(p pageState) bool { return p.Screen == "waiting-for-tap" })
		n++
		b.navigate(t, fmt.Sprintf("%s?run=%d", term.url, n)) // no test hook script
		p := b.waitPage(t, "the tap prompt again", func(p pageState) bool { return p.Hook == "" && p.Screen == "waiting-for-tap" })
		mustContain(t, p, "住民票の写し")
		term.sim.Tap(tok)
		b.waitPage(t, "the PIN pad", func(p pageState) bool { return p.Screen == "pin-required" || p.Final == "1" })
		for _, k := range []string{"1", "2", "3", "4", "ok"} {
			b.click(t, `#pad [data-key="`+k+`"]`)
		}
		p = b.waitPage(t, "the result", func(p pageState) bool { return p.State == "remove-card" || p.Final == "1" })
		if p.Ticket == "" || p.Ticket != term.lastTicket() {
			t.Fatalf("state %q reason %q ticket %q", p.State, p.Reason, p.Ticket)
		}
		term.sim.Remove(tok)
		b.waitPage(t, "the end", func(p pageState) bool { return p.Final == "1" })
	})

	// After the end the page returns to the menu by itself.
	t.Run("reset", func(t *testing.T) {
		term.waitReaderReady(t)
		n++
		b.navigate(t, fmt.Sprintf("%s?run=%d#script=inkan,cancel", term.quickURL, n))
		// Both steps done and back on the menu: only the reset leads there.
		p := b.waitPage(t, "the menu after the end", func(p pageState) bool { return p.Hook == "2" && p.Screen == "home" })
		if p.State != "" {
			t.Fatalf("the ended transaction is still on the page: state %q", p.State)
		}
		b.noErrors(t)
	})

	t.Run("iPhone", func(t *testing.T) {
		iphone := newToken(t, card.KindIPhone, card.Options{})
		open(t, "juminhyo", iphone)
		b.waitPage(t, "the tap prompt", func(p pageState) bool { return p.Screen == "waiting-for-tap" })
		term.sim.Tap(iphone)
		p := b.waitPage(t, "arm your phone", func(p pageState) bool { return p.Screen == "arm-your-phone" || p.Final == "1" })
		if p.Screen != "arm-your-phone" {
			t.Fatalf("state %q reason %q", p.State, p.Reason)
		}
		mustContain(t, p, "iPhoneで本人確認をしてから、もう一度かざしてください", "Face ID")
		checkScreenshot(t, b, "arm-your-phone")
		iphone.Arm()
		p = b.waitPage(t, "the result", func(p pageState) bool { return p.State == "remove-card" || p.Final == "1" })
		if p.Ticket == "" || p.Ticket != term.lastTicket() {
			t.Fatalf("state %q reason %q ticket %q", p.State, p.Reason, p.Ticket)
		}
		term.sim.Remove(iphone)
		b.waitPage(t, "the end", func(p pageState) bool { return p.Final == "1" })
	})

	// Without the event stream the page follows the transaction by
	// polling its status and still gets through.
	t.Run("no event stream", func(t *testing.T) {
		term.noEvents.Store(true)
		t.Cleanup(func() { term.noEvents.Store(false) })
		tok := newCard(t, card.Options{})
		open(t, "juminhyo,1234", tok)
		b.waitPage(t, "the tap prompt", func(p pageState) bool { return p.Screen == "waiting-for-tap" })
		term.sim.Tap(tok)
		p := b.waitPage(t, "the result", func(p pageState) bool { return p.State == "remove-card" || p.Final == "1" })
		if p.Ticket == "" || p.Ticket != term.lastTicket() {
			t.Fatalf("state %q reason %q ticket %q", p.State, p.Reason, p.Ticket)
		}
		if term.refused.Load() == 0 {
			t.Fatal("the page never asked for the event stream")
		}
		term.sim.Remove(tok)
		b.waitPage(t, "the end", func(p pageState) bool { return p.Final == "1" })
	})
	// Streams that break after every event, and no status polls: the
	// page sees the PIN prompt and the result (two events, so two
	// streams) only by reconnecting.
	t.Run("broken event streams", func(t *testing.T) {
		term.cutStreams.Store(true)
		t.Cleanup(func() { term.cutStreams.Store(false) })
		before := term.streams.Load()
		tok := newCard(t, card.Options{})
		open(t, "kazei,1234", tok)
		b.waitPage(t, "the tap prompt", func(p pageState) bool { return p.Screen == "waiting-for-tap" })
		term.sim.Tap(tok)
		p := b.waitPage(t, "the result", func(p pageState) bool { return p.State == "remove-card" || p.Final == "1" })
		if p.Ticket == "" || p.Ticket != term.lastTicket() {
			t.Fatalf("state %q reason %q ticket %q", p.State, p.Reason, p.Ticket)
		}
		if n := term.streams.Load() - before; n < 2 {
			t.Fatalf("%d event streams opened: the page did not reconnect", n)
		}
		term.sim.Remove(tok)
		b.waitPage(t, "the end", func(p pageState) bool { return p.Final == "1" })
	})
	// Two readers: the first ready one is chosen; the person can pick
	// the other, and the transaction runs there.
	t.Run("two readers", func(t *testing.T) {
		two := newTerminal(t, "front", "side")
		t.Cleanup(func() { b.navigate(t, "about:blank") }) // before its servers close
		two.waitReaderReady(t)
		b.navigate(t, two.url)
		type readerButton struct {
			Name    string `json:"name"`
			Pressed string `json:"pressed"`
		}
		const readersJS = `[...document.querySelectorAll('#reader-list .reader')].filter((b) => b.getClientRects().length > 0).map((b) => ({name: b.dataset.reader, pressed: b.getAttribute('aria-pressed')}))`
		var got []readerButton
		b.waitPage(t, "the reader choice", func(p pageState) bool {
			got = nil
			b.eval(t, readersJS, &got)
			return p.Screen == "home" && len(got) == 2
		})
		if got[0] != (readerButton{"front", "true"}) || got[1] != (readerButton{"side", "false"}) {
			t.Fatalf("reader buttons %+v", got)
		}
		checkScreenshot(t, b, "two-readers")
		b.click(t, `[data-reader="side"]`)
		b.eval(t, readersJS, &got)
		if got[0].Pressed != "false" || got[1].Pressed != "true" {
			t.Fatalf("after choosing side: %+v", got)
		}
		b.click(t, `[data-service="juminhyo"]`)
		b.waitPage(t, "the tap prompt", func(p pageState) bool { return p.Screen == "waiting-for-tap" })
		for _, r := range two.eng.Readers(context.Background()) {
			if busy := r.State == api.ReaderBusy; busy != (r.Name == "side") {
				t.Fatalf("readers %+v: the transaction is not on side", two.eng.Readers(context.Background()))
			}
		}
		tok := newCard(t, card.Options{})
		t.Cleanup(func() { two.sims["side"].Remove(tok) })
		two.sims["side"].Tap(tok)
		b.waitPage(t, "the PIN pad", func(p pageState) bool { return p.Screen == "pin-required" || p.Final == "1" })
		// A hardware keypad this time: keys, a correction, Enter.
		for _, k := range []string{"1", "2", "9", "Backspace", "3", "4", "Enter"} {
			b.key(t, k)
		}
		p := b.waitPage(t, "the result", func(p pageState) bool { return p.State == "remove-card" || p.Final == "1" })
		if p.Ticket == "" || p.Ticket != two.lastTicket() {
			t.Fatalf("state %q reason %q ticket %q", p.State, p.Reason, p.Ticket)
		}
		two.sims["side"].Remove(tok)
		b.waitPage(t, "the end", func(p pageState) bool { return p.Final == "1" })
		b.noErrors(t)
	})
	// Last, as it stops the issuance service: a clear failure.
	t.Run("service down", func(t *testing.T) {
		term.issuer.Close()
		tok := newCard(t, card.Options{})
		open(t, "juminhyo,1234", tok)
		b.waitPage(t, "the tap prompt", func(p pageState) bool { return p.Screen == "waiting-for-tap" })
		term.sim.Tap(tok)
		p := b.waitPage(t, "the failure", func(p pageState) bool { return p.State == "remove-card" || p.Final == "1" })
		if p.Reason != "service_unavailable" {
			t.Fatalf("reason %q:\n%s", p.Reason, p.Text)
		}
		mustContain(t, p, "発行サービスに接続できません", "係員にお声がけください")
		term.sim.Remove(tok)
		b.waitPage(t, "the end", func(p pageState) bool { return p.Final == "1" })
	})
}

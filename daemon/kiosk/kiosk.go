// Package kiosk serves the kiosk screen: one embedded page (HTML, CSS and
// vanilla JavaScript, no build step, no external resources) that drives
// kazasud's local API. The person chooses a service, holds a My Number Card
// or a JPKI phone to the reader, types the 4-digit PIN on an on-screen pad
// and gets the result (the ticket) or a clear reason, in Japanese with
// English below.
//
// [Handler] serves the page at / with its assets and passes /v1/... to the
// API handler it wraps, so the page and the API share one origin. The
// integrator mounts it on a loopback listener only ([CheckLoopback]):
//
//	srv, _ := api.New(api.Options{Engine: eng, Log: log})
//	if err := kiosk.CheckLoopback(cfg.Kiosk.Listen); err != nil { ... }
//	ln, _ := net.Listen("tcp", cfg.Kiosk.Listen) // e.g. 127.0.0.1:8080
//	go api.Serve(ctx, ln, kiosk.Handler(srv.Handler(), kiosk.Options{}), log)
//
// and points the kiosk browser at http://127.0.0.1:8080/.
//
// # The page
//
// The menu lists the readers when there are several (the first ready one
// is chosen) and the services (住民票の写し juminhyo, 印鑑登録証明書 inkan,
// 課税証明書 kazei). A transaction is followed through its event stream
// (EventSource, which reconnects; reopened after an HTTP error) and, while
// the stream is not open, by polling its status every 2 s. Each state has a
// screen: the tap prompt with card and phone hints, arm-your-phone for
// iPhones, progress, the PIN pad with the tries left, the result (the
// ticket, or the reason as a message) and "take your card". Before the last
// PIN try a dialog makes the person confirm; only then does the page call
// confirm-last-try and send the PIN. A page reloaded mid-transaction picks
// the transaction up again; after the end it returns to the menu (see
// Options.ResetAfter).
//
// # The PIN
//
// The page keeps the digits in a JavaScript array, shows only ●, sends them
// once in the body of POST /v1/transactions/{id}/pin and overwrites the
// array before the request leaves. They are never put in the DOM, a URL,
// storage or a log.
//
// # Defences
//
// The page and its assets carry a Content-Security-Policy starting with
// default-src 'self' (no inline script or style, no other origin), deny
// framing, send no referrer and are not cached (Cache-Control: no-store).
// Because the API behind the page has no token, requests whose Host is not
// a loopback name are refused (DNS rebinding), and so are state-changing
// requests whose Origin is another site (cross-site forms).
package kiosk

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// DefaultResetAfter is how long the result stays on screen after the
// transaction ended before the page returns to the service menu.
const DefaultResetAfter = 30 * time.Second

// Options configure Handler.
type Options struct {
	// TestHooks serves testhook.js, which reads steps from the URL
	// fragment (#script=juminhyo,1234,confirm) and performs them by
	// clicking the page's own buttons: a service code clicks that service
	// on the menu, four digits are typed on the PIN pad and submitted at the
	// next PIN prompt, "confirm" and "reenter" answer the last-try dialog,
	// "cancel" presses Cancel. It exists for the browser test and must
	// never be enabled in production: whoever sets the URL would drive the
	// screen (start a transaction, confirm a last try). The default (false)
	// neither serves nor references it.
	TestHooks bool
	// ResetAfter is how long the result of an ended transaction stays on
	// screen; 0 means DefaultResetAfter, a negative value never resets.
	ResetAfter time.Duration
	// Services are the service codes offered on the menu, in order (the
	// engine's configured services); nil means DefaultServices. Codes
	// without a built-in label are shown as the code itself.
	Services []string
}

// DefaultServices are the services offered when Options.Services is nil.
var DefaultServices = []string{"juminhyo", "inkan", "kazei"}

type service struct{ Code, JA, EN string }

// labels of the known services: Japanese, English.
var labels = map[string][2]string{
	"juminhyo": {"住民票の写し", "Certificate of residence"},
	"inkan":    {"印鑑登録証明書", "Seal registration certificate"},
	"kazei":    {"課税証明書", "Tax certificate"},
}

// csp is the Content-Security-Policy of the page and its assets.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var assets = map[string]string{ // path → content type
	"/kiosk.css":   "text/css; charset=utf-8",
	"/kiosk.js":    "text/javascript; charset=utf-8",
	"/testhook.js": "text/javascript; charset=utf-8",
	"/favicon.svg": "image/svg+xml",
}

var page = template.Must(template.ParseFS(static, "static/index.html"))

// Handler serves the kiosk page at / (GET and HEAD), its assets, and api
// at /v1 and /v1/...; anything else is 404. It panics only if the embedded
// page template is broken (a build defect).
func Handler(api http.Handler, opts Options) http.Handler {
	reset := opts.ResetAfter
	if reset == 0 {
		reset = DefaultResetAfter
	}
	resetMS := int64(-1)
	if reset > 0 {
		resetMS = reset.Milliseconds()
	}
	codes := opts.Services
	if codes == nil {
		codes = DefaultServices
	}
	var services []service
	for _, c := range codes {
		l, ok := labels[c]
		if !ok {
			l = [2]string{c, ""}
		}
		services = append(services, service{c, l[0], l[1]})
	}
	var buf bytes.Buffer
	err := page.Execute(&buf, struct {
		TestHooks bool
		ResetMS   string
		Services  []service
	}{opts.TestHooks, strconv.FormatInt(resetMS, 10), services})
	if err != nil {
		panic("kiosk: page template: " + err.Error()) // the template is embedded: a bug
	}
	index := buf.Bytes()
	files := map[string][]byte{}
	for p := range assets {
		if p == "/testhook.js" && !opts.TestHooks {
			continue
		}
		b, err := fs.ReadFile(static, "static"+p)
		if err != nil {
			panic("kiosk: " + err.Error())
		}
		files[p] = b
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			plain(w, http.StatusMisdirectedRequest, "kiosk: not a loopback host")
			return
		}
		if !safeMethod(r.Method) && !sameOrigin(r) {
			plain(w, http.StatusForbidden, "kiosk: cross-origin request refused")
			return
		}
		p := r.URL.Path
		if p == "/v1" || strings.HasPrefix(p, "/v1/") {
			api.ServeHTTP(w, r)
			return
		}
		var body []byte
		ctype := "text/html; charset=utf-8"
		switch b, ok := files[p]; {
		case p == "/":
			body = index
		case ok:
			body, ctype = b, assets[p]
		default:
			plain(w, http.StatusNotFound, "kiosk: not found")
			return
		}
		if !safeMethod(r.Method) {
			w.Header().Set("Allow", "GET, HEAD")
			plain(w, http.StatusMethodNotAllowed, "kiosk: use GET")
			return
		}
		headers(w)
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})
}

func headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

func plain(w http.ResponseWriter, status int, msg string) {
	headers(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// loopbackHost reports whether a Host header names this machine by a
// loopback address or "localhost" (with or without a port).
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// sameOrigin reports whether a state-changing request comes from the page
// itself: browsers send Origin on such requests (and Sec-Fetch-Site); a
// request with neither comes from a program, not from another site's page.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host == r.Host
}

// CheckLoopback refuses a listen address ("host:port") that is not on a
// loopback interface: the kiosk page and the API behind it have no
// authentication, so they must not be reachable from the network. An empty
// host (all interfaces) is refused; "localhost" is accepted only when it
// resolves to loopback addresses alone.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("kiosk: listen address %q: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("kiosk: listen address %q is on all interfaces; use 127.0.0.1 or [::1]", addr)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Unmap().IsLoopback() {
			return fmt.Errorf("kiosk: listen address %q is not a loopback address", addr)
		}
		return nil
	}
	if !strings.EqualFold(host, "localhost") {
		return fmt.Errorf("kiosk: listen address %q: use a loopback IP address or localhost", addr)
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("kiosk: listen address %q: localhost does not resolve", addr)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("kiosk: listen address %q: localhost resolves to %s, not loopback", addr, ip)
		}
	}
	return nil
}

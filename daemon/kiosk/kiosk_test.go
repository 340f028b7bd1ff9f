package kiosk_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"kazasu/daemon/kiosk"
)

// apiRecorder stands in for the API handler: it answers with a marker so
// the tests see which requests were passed through.
type apiRecorder struct{ paths []string }

func (a *apiRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.paths = append(a.paths, r.Method+" "+r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"from":"api"}`)
}

func do(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.Host = "127.0.0.1:8080"
	for k, v := range hdr {
		if k == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestPageAndAssets(t *testing.T) {
	api := &apiRecorder{}
	h := kiosk.Handler(api, kiosk.Options{})
	for _, c := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script src="kiosk.js" defer></script>`},
		{"/kiosk.css", "text/css; charset=utf-8", ".key"},
		{"/kiosk.js", "text/javascript; charset=utf-8", "new EventSource("},
		{"/favicon.svg", "image/svg+xml", "<svg"},
	} {
		w := do(t, h, http.MethodGet, c.path, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", c.path, w.Code)
		}
		hd := w.Header()
		if got := hd.Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if csp := hd.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self';") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: CSP %q", c.path, csp)
		}
		if cc := hd.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("GET %s: Cache-Control %q, want no-store", c.path, cc)
		}
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("X-Frame-Options") != "DENY" || hd.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", c.path, hd)
		}
		if !strings.Contains(w.Body.String(), c.contains) {
			t.Errorf("GET %s: body lacks %q", c.path, c.contains)
		}
	}
	if len(api.paths) != 0 {
		t.Fatalf("page requests reached the API: %v", api.paths)
	}
	// HEAD: headers, no body.
	w := do(t, h, http.MethodHead, "/", nil)
	if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "" {
		t.Fatalf("HEAD /: %d, %d bytes, Content-Length %q", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
	}
}

func TestRouting(t *testing.T) {
	api := &apiRecorder{}
	h := kiosk.Handler(api, kiosk.Options{})
	for _, c := range []struct {
		method, path string
		status       int
		toAPI        bool
	}{
		{"GET", "/v1/readers", 200, true},
		{"POST", "/v1/transactions", 200, true},
		{"GET", "/v1/transactions/tx-1/events", 200, true},
		{"POST", "/v1/transactions/tx-1/pin", 200, true},
		{"GET", "/v1", 200, true},
		{"GET", "/v1x", 404, false},
		{"GET", "/index.html", 404, false},
		{"GET", "/static/kiosk.js", 404, false},
		{"GET", "/testhook.js", 404, false}, // TestHooks off
		{"GET", "/kiosk.js/", 404, false},
		{"POST", "/", 405, false},
		{"PUT", "/kiosk.js", 405, false},
	} {
		api.paths = nil
		w := do(t, h, c.method, c.path, nil)
		if w.Code != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.status)
		}
		if got := len(api.paths) == 1; got != c.toAPI {
			t.Errorf("%s %s: passed to the API %v, want %v", c.method, c.path, got, c.toAPI)
		}
		if c.status == 405 && w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", c.method, c.path, w.Header().Get("Allow"))
		}
	}
}

func TestHostAndOrigin(t *testing.T) {
	api := &apiRecorder{}
	h := kiosk.Handler(api, kiosk.Options{})
	for _, host := range []string{"127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:8080", "127.0.0.2"} {
		if w := do(t, h, "GET", "/", map[string]string{"Host": host}); w.Code != 200 {
			t.Errorf("Host %s: %d", host, w.Code)
		}
	}
	// DNS rebinding: another name pointing at 127.0.0.1 gets nothing.
	for _, host := range []string{"evil.example:8080", "192.168.1.10:8080", "127.0.0.1.evil.example", "localhost.evil.example", ""} {
		api.paths = nil
		for _, p := range []string{"/", "/v1/readers"} {
			if w := do(t, h, "GET", p, map[string]string{"Host": host}); w.Code != http.StatusMisdirectedRequest {
				t.Errorf("Host %q %s: %d", host, p, w.Code)
			}
		}
		if len(api.paths) != 0 {
			t.Errorf("Host %q reached the API", host)
		}
	}
	// Cross-site state changes are refused; the page's own pass.
	for _, c := range []struct {
		hdr map[string]string
		ok  bool
	}{
		{map[string]string{"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}, true},
		{map[string]string{}, true}, // a program (curl), not a browser
		{map[string]string{"Origin": "http://evil.example"}, false},
		{map[string]string{"Origin": "http://127.0.0.1:9999"}, false},
		{map[string]string{"Origin": "null"}, false},
		{map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{map[string]string{"Sec-Fetch-Site": "same-site"}, false},
	} {
		api.paths = nil
		w := do(t, h, "POST", "/v1/transactions/tx-1/cancel", c.hdr)
		if ok := w.Code == 200 && len(api.paths) == 1; ok != c.ok {
			t.Errorf("POST with %v: %d, passed %v, want %v", c.hdr, w.Code, ok, c.ok)
		}
	}
	// Reading the event stream from another site's page is harmless to
	// the state and blocked by CORS anyway; GETs pass.
	if w := do(t, h, "GET", "/v1/readers", map[string]string{"Origin": "http://evil.example"}); w.Code != 200 {
		t.Errorf("GET with a foreign Origin: %d", w.Code)
	}
}

func TestTestHooks(t *testing.T) {
	off := kiosk.Handler(&apiRecorder{}, kiosk.Options{})
	if body := do(t, off, "GET", "/", nil).Body.String(); strings.Contains(body, "testhook") {
		t.Fatal("the production page references the test hook")
	}
	on := kiosk.Handler(&apiRecorder{}, kiosk.Options{TestHooks: true})
	if body := do(t, on, "GET", "/", nil).Body.String(); !strings.Contains(body, `<script src="testhook.js" defer></script>`) {
		t.Fatal("the test page does not load the hook")
	}
	w := do(t, on, "GET", "/testhook.js", nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/javascript; charset=utf-8" || !strings.Contains(w.Body.String(), "script=") {
		t.Fatalf("testhook.js: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
}

func TestResetAfter(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, `data-reset-ms="30000"`},
		{5 * time.Second, `data-reset-ms="5000"`},
		{-1, `data-reset-ms="-1"`},
	} {
		body := do(t, kiosk.Handler(&apiRecorder{}, kiosk.Options{ResetAfter: c.d}), "GET", "/", nil).Body.String()
		if !strings.Contains(body, c.want) {
			t.Errorf("ResetAfter %v: page lacks %s", c.d, c.want)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, a := range []string{"127.0.0.1:8080", "127.0.0.1:0", "127.1.2.3:80", "[::1]:8080", "[::ffff:127.0.0.1]:80", "localhost:8080"} {
		if err := kiosk.CheckLoopback(a); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
	for _, a := range []string{":8080", "0.0.0.0:8080", "[::]:8080", "192.168.1.2:8080", "10.0.0.1:80", "example.com:80", "127.0.0.1", "localhost", "", "[fe80::1]:80"} {
		if err := kiosk.CheckLoopback(a); err == nil {
			t.Errorf("%q accepted", a)
		}
	}
}

// The page is self-contained: every src, href and url() is a relative
// path on this server (no CDN, no web fonts), nothing is inline, and the
// scripts neither log nor store anything.
func TestSelfContained(t *testing.T) {
	root := os.DirFS("static")
	refs := regexp.MustCompile(`(?:src|href)\s*=\s*"([^"]*)"|url\(\s*['"]?([^'")]*)`)
	err := fs.WalkDir(root, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, path)
		if err != nil {
			return err
		}
		s := string(b)
		for _, m := range refs.FindAllStringSubmatch(s, -1) {
			ref := m[1] + m[2]
			if ref == "" || strings.Contains(ref, ":") || strings.HasPrefix(ref, "//") {
				t.Errorf("%s: external or scheme reference %q", path, ref)
			}
		}
		if strings.Contains(s, "@import") || strings.Contains(s, "@font-face") {
			t.Errorf("%s: imports or web fonts", path)
		}
		if strings.HasSuffix(path, ".html") && (regexp.MustCompile(`<script(?:[^>]*)>[^<]`).MatchString(s) || strings.Contains(s, "<style") || strings.Contains(s, " style=") || regexp.MustCompile(` on[a-z]+=`).MatchString(s)) {
			t.Errorf("%s: inline script or style (the CSP forbids it)", path)
		}
		if strings.HasSuffix(path, ".js") {
			for _, bad := range []string{"console.", "localStorage", "sessionStorage", "indexedDB", "document.cookie", "innerHTML", "eval(", "history.", "location.hash ="} {
				if strings.Contains(s, bad) {
					t.Errorf("%s uses %s", path, bad)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestServices(t *testing.T) {
	buttons := regexp.MustCompile(`data-service="([^"]*)">\s*<span class="ja">([^<]*)</span>`)
	for _, c := range []struct {
		services []string
		want     []string // code=label
	}{
		{nil, []string{"juminhyo=住民票の写し", "inkan=印鑑登録証明書", "kazei=課税証明書"}},
		{[]string{"kazei", "juminhyo"}, []string{"kazei=課税証明書", "juminhyo=住民票の写し"}},
		{[]string{"koseki<b>"}, []string{"koseki&lt;b&gt;=koseki&lt;b&gt;"}}, // escaped, labelled by its code
		{[]string{}, nil},
	} {
		body := do(t, kiosk.Handler(&apiRecorder{}, kiosk.Options{Services: c.services}), "GET", "/", nil).Body.String()
		var got []string
		for _, m := range buttons.FindAllStringSubmatch(body, -1) {
			got = append(got, m[1]+"="+m[2])
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("Services %q: buttons %q, want %q", c.services, got, c.want)
		}
	}
}

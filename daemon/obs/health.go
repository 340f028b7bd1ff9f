package obs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"kazasu/daemon/httpserve"
)

// Check reports whether a subsystem is ready; nil means ready. It must
// return within the context's deadline.
type Check func(ctx context.Context) error

// Health holds readiness checks and the liveness/lame-duck flag.
type Health struct {
	timeout  time.Duration
	mu       sync.Mutex
	checks   map[string]Check
	draining atomic.Bool
}

// NewHealth returns a Health whose checks each get timeout (default 2s).
func NewHealth(timeout time.Duration) *Health {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Health{timeout: timeout, checks: map[string]Check{}}
}

// Register adds (or replaces) the readiness check name, e.g. "reader_sim0",
// "relay", "revocation", "clock".
func (h *Health) Register(name string, c Check) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = c
}

// Drain marks the daemon as shutting down: /healthz and /readyz answer 503
// so supervisors and load checks stop sending work (coredns lameduck).
func (h *Health) Drain() { h.draining.Store(true) }

// Readiness is the answer of /readyz.
type Readiness struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"` // name → "ok" or the error
}

// Ready runs every check concurrently and reports.
func (h *Health) Ready(ctx context.Context) Readiness {
	h.mu.Lock()
	names := make([]string, 0, len(h.checks))
	checks := make([]Check, 0, len(h.checks))
	for n, c := range h.checks {
		names = append(names, n)
		checks = append(checks, c)
	}
	h.mu.Unlock()
	res := Readiness{Ready: !h.draining.Load(), Checks: map[string]string{}}
	if h.draining.Load() {
		res.Checks["shutdown"] = "draining"
	}
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, h.timeout)
			defer cancel()
			errs[i] = runCheck(cctx, c)
		}()
	}
	wg.Wait()
	for i, n := range names {
		if errs[i] != nil {
			res.Ready = false
			res.Checks[n] = truncate(errs[i].Error(), 200)
		} else {
			res.Checks[n] = "ok"
		}
	}
	return res
}

// runCheck runs c and gives up at the context's deadline even if c does not.
func runCheck(ctx context.Context, c Check) (err error) {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("check panicked: %v", r)
			}
		}()
		done <- c(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("check timed out: %w", ctx.Err())
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Handler serves /metrics (m may be nil), /healthz and /readyz.
func Handler(m *Metrics, h *Health) http.Handler {
	mux := http.NewServeMux()
	if m != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
			ErrorHandling:       promhttp.ContinueOnError,
			MaxRequestsInFlight: 4,
			Timeout:             10 * time.Second,
		}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if h.draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "draining\n")
			return
		}
		io.WriteString(w, "OK\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		res := h.Ready(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !res.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(&res)
	})
	return mux
}

// Serve serves h on ln with timeouts until ctx is done; cancellation is not
// an error.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if err := httpserve.Run(ctx, srv, ln, 3*time.Second); err != nil {
		return fmt.Errorf("obs: %w", err)
	}
	return nil
}

// ReadyNames lists registered checks, sorted (for logs at startup).
func (h *Health) ReadyNames() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n []string
	for k := range h.checks {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// NewLogger returns kazasud's JSON logger at level (debug, info, warn,
// error) and the LevelVar to change it at run time. As a last line of
// defence it redacts any attribute whose key names a secret (pin,
// password, passcode, token, secret) whatever a caller passes.
func NewLogger(w io.Writer, level string) (*slog.Logger, *slog.LevelVar, error) {
	lv := new(slog.LevelVar)
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("obs: log level %q: %w", level, err)
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: lv,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if secretKey(a.Key) {
				return slog.String(a.Key, "[redacted]")
			}
			return a
		},
	})
	return slog.New(h), lv, nil
}

func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"pin", "password", "passcode", "token", "secret"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

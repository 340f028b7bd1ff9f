// Package obs is kazasud's observability: Prometheus metrics on an own
// registry, liveness (/healthz) and readiness (/readyz, with registered
// checks, coredns style) on one loopback listener, the slog JSON logger,
// and systemd notification (READY=1, STOPPING=1, WATCHDOG=1).
//
// Metric names (namespace kazasu):
//
//	kazasu_taps_total{reader,token_type}                 cards or phones detected
//	kazasu_transactions_total{outcome,token_type}        ended transactions
//	kazasu_step_duration_seconds{step}                   histogram per step
//	kazasu_reader_errors_total{reader,kind}              reader/RF errors
//	kazasu_queue_depth / kazasu_queue_dead               store-and-forward backlog
//	kazasu_relay_requests_total{call,result}             issuance service calls
//	kazasu_build_info{version,goversion}                 1
//
// plus the Go and process collectors. Label values are sanitised to
// [a-z0-9_-]{1,32} (anything else becomes "other") so no caller can put
// free text, let alone personal data, into a label or blow up cardinality.
package obs

import (
	"regexp"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Steps of a transaction, for ObserveStep.
const (
	StepTap    = "tap"    // transaction start → token detected
	StepRead   = "read"   // certificate read
	StepPIN    = "pin"    // waiting for the PIN
	StepVerify = "verify" // PIN verify + signature + validation
	StepRelay  = "relay"  // issuance service round trip
	StepRemove = "remove" // waiting for the token to leave
	StepTotal  = "total"  // tap to result
)

// Metrics holds kazasud's collectors on their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	taps         *prometheus.CounterVec
	transactions *prometheus.CounterVec
	steps        *prometheus.HistogramVec
	readerErrors *prometheus.CounterVec
	relay        *prometheus.CounterVec
}

var reLabel = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

func label(s string) string {
	if s == "" {
		return "none"
	}
	if !reLabel.MatchString(s) {
		return "other"
	}
	return s
}

// NewMetrics creates and registers the collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		taps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kazasu", Name: "taps_total", Help: "Cards or phones detected in a reader's field.",
		}, []string{"reader", "token_type"}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kazasu", Name: "transactions_total", Help: "Ended transactions by outcome (done or a failure code) and token type.",
		}, []string{"outcome", "token_type"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kazasu", Name: "step_duration_seconds", Help: "Duration of transaction steps.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120},
		}, []string{"step"}),
		readerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kazasu", Name: "reader_errors_total", Help: "Reader and RF errors by kind (timeout, transmission, protocol, target_gone, reader_gone, ...).",
		}, []string{"reader", "kind"}),
		relay: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kazasu", Name: "relay_requests_total", Help: "Issuance service calls by call and result (ok, refused, unavailable).",
		}, []string{"call", "result"}),
	}
	version := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "kazasu", Name: "build_info", Help: "Build information.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	reg.MustRegister(m.taps, m.transactions, m.steps, m.readerErrors, m.relay, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Tap counts a detected token.
func (m *Metrics) Tap(reader, tokenType string) {
	m.taps.WithLabelValues(label(reader), label(tokenType)).Inc()
}

// Transaction counts an ended transaction; outcome is "done" or a failure
// code such as "cancelled", "pin_blocked", "cert_revoked".
func (m *Metrics) Transaction(outcome, tokenType string) {
	m.transactions.WithLabelValues(label(outcome), label(tokenType)).Inc()
}

// ObserveStep records a step's duration.
func (m *Metrics) ObserveStep(step string, d time.Duration) {
	m.steps.WithLabelValues(label(step)).Observe(d.Seconds())
}

// ReaderError counts a reader error of a kind.
func (m *Metrics) ReaderError(reader, kind string) {
	m.readerErrors.WithLabelValues(label(reader), label(kind)).Inc()
}

// Relay counts an issuance service call; result is ok, refused or
// unavailable.
func (m *Metrics) Relay(call, result string) {
	m.relay.WithLabelValues(label(call), label(result)).Inc()
}

// RegisterQueue exports the store-and-forward queue's depth and dead
// letters, read at scrape time (daemon/queue Len and DeadLen).
func (m *Metrics) RegisterQueue(depth, dead func() int) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "kazasu", Name: "queue_depth", Help: "Items waiting in the store-and-forward queue."},
			func() float64 { return float64(depth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "kazasu", Name: "queue_dead", Help: "Items the service refused for good (kept on disk)."},
			func() float64 { return float64(dead()) }),
	)
}

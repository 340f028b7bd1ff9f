package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"kazasu/daemon/config"
)

// ErrUnavailable is wrapped by every client error that a retry may cure:
// network failures, timeouts, 5xx answers, a service that cannot validate
// now. Refusals are *RefusedError instead.
var ErrUnavailable = errors.New("relay: service unavailable")

// RefusedError is a definite "no" from the service (a 4xx answer).
type RefusedError struct {
	Status  int
	Code    string // e.g. challenge_expired, cert_revoked
	Message string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("relay: refused (%d %s): %s", e.Status, e.Code, e.Message)
}

// Retry is the client's retry policy for idempotent calls.
type Retry struct {
	MaxAttempts int           // total attempts, >= 1
	Initial     time.Duration // first backoff
	Max         time.Duration // backoff cap
}

// ClientConfig configures NewClient.
type ClientConfig struct {
	URL            string // https://host:port[/prefix]
	CA             *x509.CertPool
	Certificate    tls.Certificate // client certificate (mutual TLS)
	ConnectTimeout time.Duration
	RequestTimeout time.Duration // per attempt
	Retry          Retry
}

// LoadClientConfig builds a ClientConfig from PEM files: the pinned CA
// (the only root the client trusts) and the client certificate and key.
func LoadClientConfig(serviceURL, caFile, certFile, keyFile string) (ClientConfig, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return ClientConfig{}, fmt.Errorf("relay: pinned CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return ClientConfig{}, fmt.Errorf("relay: pinned CA %s: no certificate in PEM", caFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return ClientConfig{}, fmt.Errorf("relay: client certificate: %w", err)
	}
	return ClientConfig{
		URL: serviceURL, CA: pool, Certificate: cert,
		ConnectTimeout: 5 * time.Second, RequestTimeout: 20 * time.Second,
		Retry: Retry{MaxAttempts: 5, Initial: 200 * time.Millisecond, Max: 10 * time.Second},
	}, nil
}

// Client talks to the issuance service. It is safe for concurrent use.
type Client struct {
	base *url.URL
	hc   *http.Client
	cfg  ClientConfig
}

// NewClient returns a client that trusts only cfg.CA and presents
// cfg.Certificate.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("relay: service URL %q must be https://host[:port]", cfg.URL)
	}
	if cfg.CA == nil {
		return nil, errors.New("relay: no pinned CA")
	}
	if len(cfg.Certificate.Certificate) == 0 {
		return nil, errors.New("relay: no client certificate")
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 20 * time.Second
	}
	if cfg.Retry.MaxAttempts < 1 {
		cfg.Retry.MaxAttempts = 1
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: cfg.ConnectTimeout,
		TLSClientConfig: &tls.Config{
			RootCAs:      cfg.CA,
			Certificates: []tls.Certificate{cfg.Certificate},
			MinVersion:   tls.VersionTLS13,
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.RequestTimeout,
		Proxy:                 nil, // never through an environment proxy
	}
	return &Client{base: u, hc: &http.Client{Transport: tr}, cfg: cfg}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Challenge asks for a challenge (idempotent per terminal + transaction).
func (c *Client) Challenge(ctx context.Context, r ChallengeRequest) (*Challenge, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var ch Challenge
	if err := c.do(ctx, http.MethodPost, "/v1/challenges", "", &r, &ch); err != nil {
		return nil, err
	}
	if err := ch.Validate(); err != nil {
		return nil, fmt.Errorf("%w: bad challenge from service: %w", ErrUnavailable, err)
	}
	return &ch, nil
}

// Submit sends a signed submission. key must be the same on every retry
// and resend of this submission: the service answers a repeated key with
// the first answer.
func (c *Client) Submit(ctx context.Context, key string, s Submission) (*Issued, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var out Issued
	if err := c.do(ctx, http.MethodPost, "/v1/submissions", key, &s, &out); err != nil {
		return nil, err
	}
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("%w: bad answer from service: %w", ErrUnavailable, err)
	}
	return &out, nil
}

// SendReceipt delivers a completion receipt (idempotent by key).
func (c *Client) SendReceipt(ctx context.Context, key string, r Receipt) (*ReceiptAck, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var ack ReceiptAck
	if err := c.do(ctx, http.MethodPost, "/v1/receipts", key, &r, &ack); err != nil {
		return nil, err
	}
	return &ack, nil
}

// UploadAudit delivers one audit line (idempotent by key).
func (c *Client) UploadAudit(ctx context.Context, key string, a AuditUpload) (*AuditAck, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	var ack AuditAck
	if err := c.do(ctx, http.MethodPost, "/v1/audit-records", key, &a, &ack); err != nil {
		return nil, err
	}
	return &ack, nil
}

// Status asks for the online revocation status of a certificate: issuer is
// the hex SHA-256 of the issuer's DER name, serial the hex serial number.
func (c *Client) Status(ctx context.Context, issuerHex, serialHex string) (*CertStatus, error) {
	if !ValidHex(issuerHex) || !ValidHex(serialHex) {
		return nil, errors.New("relay: status: issuer and serial must be lower-case hex")
	}
	var st CertStatus
	if err := c.do(ctx, http.MethodGet, "/v1/status/"+issuerHex+"/"+serialHex, "", nil, &st); err != nil {
		return nil, err
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("%w: bad status from service: %w", ErrUnavailable, err)
	}
	return &st, nil
}

// do runs one call with retries: every call of this API is idempotent
// (challenges per terminal + transaction, the others by key), so each may
// be retried while the error is ErrUnavailable.
func (c *Client) do(ctx context.Context, method, path, key string, in, out any) error {
	if key != "" && !ValidKey(key) {
		return fmt.Errorf("relay: bad idempotency key %q", key)
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
	}
	var err error
	for attempt := 1; ; attempt++ {
		err = c.once(ctx, method, path, key, body, out)
		if err == nil || !errors.Is(err, ErrUnavailable) || attempt >= c.cfg.Retry.MaxAttempts {
			return err
		}
		t := time.NewTimer(c.delay(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

func (c *Client) delay(n int) time.Duration {
	d, max := c.cfg.Retry.Initial, c.cfg.Retry.Max
	if d <= 0 {
		d = 100 * time.Millisecond
	}
	if max < d {
		max = d
	}
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + rand.N(d/2+1)
}

func (c *Client) once(ctx context.Context, method, path, key string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	var rd *bytes.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequestWithContext(ctx, method, u.String(), rd)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, u.String(), nil)
	}
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set(IdempotencyHeader, key)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err := Decode(resp.Body, MaxResponseBody, out); err != nil {
			return fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, path, err)
		}
		return nil
	}
	var eb ErrorBody
	decErr := Decode(resp.Body, 64<<10, &eb)
	if decErr != nil || !ValidCode(eb.Error.Code) {
		eb.Error = ErrorDetail{Code: "http_" + fmt.Sprint(resp.StatusCode), Message: resp.Status, Retryable: resp.StatusCode >= 500}
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || eb.Error.Retryable {
		return fmt.Errorf("%w: %s %s: %d %s: %s", ErrUnavailable, method, path, resp.StatusCode, eb.Error.Code, eb.Error.Message)
	}
	return &RefusedError{Status: resp.StatusCode, Code: eb.Error.Code, Message: truncate(eb.Error.Message, 200)}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ClientConfigFrom builds the client configuration from kazasud's config:
// relay.url, the pinned CA and client certificate (paths relative to
// data_dir), timeouts and retry policy.
func ClientConfigFrom(c *config.Config) (ClientConfig, error) {
	cc, err := LoadClientConfig(c.Relay.URL, c.Path(c.Relay.CA), c.Path(c.Relay.ClientCert), c.Path(c.Relay.ClientKey))
	if err != nil {
		return ClientConfig{}, err
	}
	cc.ConnectTimeout = c.Relay.ConnectTimeout.D()
	cc.RequestTimeout = c.Relay.RequestTimeout.D()
	cc.Retry = Retry{MaxAttempts: c.Relay.Retry.MaxAttempts, Initial: c.Relay.Retry.InitialBackoff.D(), Max: c.Relay.Retry.MaxBackoff.D()}
	return cc, nil
}

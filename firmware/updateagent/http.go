package updateagent

// HTTP API of the update agent (default port 8074), for `kazasu push` and
// `kazasu status`. The agent trusts signatures, not the network; requests
// are still only served to loopback and private (RFC 1918/4193) addresses.
//
//	POST /v1/bundle   body: the bundle file (application/octet-stream)
//	    202 Accepted  written, read back and armed; the board reboots into
//	                  the trial within a second. Body: Status.
//	    403 Forbidden unsigned, unknown key, bad signature
//	    409 Conflict  replay/downgrade, update or trial in progress
//	    422 Unprocessable  malformed, corrupt, wrong board/kind/kernel,
//	                  expired, not yet valid, clock unset, boot payload
//	    500           the device failed (write or read-back error)
//	    Error bodies: {"error": "<message>", "kind": "<kind>"}.
//	GET /v1/status    200, Status (JSON)
//
// Follow an update with Client.Wait: the board goes away during the
// reboot, then reports the trial phase, and then Last = committed or
// rolled-back for the pushed build.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"kazasu/firmware/bundle"
	"kazasu/firmware/slot"
)

// DefaultPort is where the agent listens.
const DefaultPort = 8074

// MaxBundle bounds an upload (a root slot plus headroom).
const MaxBundle = 512 << 20

// ErrorBody is the JSON body of a refused request.
type ErrorBody struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

// Handler serves the API.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Status())
	})
	mux.HandleFunc("POST /v1/bundle", func(w http.ResponseWriter, r *http.Request) {
		body := http.MaxBytesReader(w, r.Body, MaxBundle)
		err := a.Install(r.Context(), body)
		if err != nil {
			code, kind := classify(err)
			a.c.Logf("updateagent: bundle from %s refused: %v", r.RemoteAddr, err)
			writeJSON(w, code, ErrorBody{Error: err.Error(), Kind: kind})
			return
		}
		writeJSON(w, http.StatusAccepted, a.Status())
	})
	return privateOnly(mux)
}

func classify(err error) (int, string) {
	for _, c := range []struct {
		err  error
		code int
		kind string
	}{
		{bundle.ErrUnsigned, 403, "unsigned"},
		{bundle.ErrUnknownKey, 403, "unknown-key"},
		{bundle.ErrBadSignature, 403, "bad-signature"},
		{bundle.ErrDowngrade, 409, "downgrade"},
		{slot.ErrNotNewer, 409, "downgrade"},
		{slot.ErrBusy, 409, "busy"},
		{slot.ErrInTrial, 409, "in-trial"},
		{bundle.ErrWrongBoard, 422, "wrong-board"},
		{bundle.ErrWrongKind, 422, "wrong-kind"},
		{bundle.ErrExpired, 422, "expired"},
		{bundle.ErrNotYetValid, 422, "not-yet-valid"},
		{bundle.ErrClockUnset, 422, "clock-unset"},
		{bundle.ErrCorrupt, 422, "corrupt"},
		{bundle.ErrMalformed, 422, "malformed"},
		{ErrBootPayload, 422, "boot-payload"},
	} {
		if errors.Is(err, c.err) {
			return c.code, c.kind
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, "too-large"
	}
	var ref *Refusal
	if errors.As(err, &ref) {
		return 422, "refused"
	}
	return http.StatusInternalServerError, "device"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// privateOnly refuses clients outside loopback and private networks.
func privateOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		ip := net.ParseIP(host)
		if err != nil || ip == nil || !(ip.IsLoopback() || ip.IsPrivate()) {
			writeJSON(w, http.StatusForbidden, ErrorBody{Error: "updateagent: only loopback and private networks may use this API", Kind: "forbidden"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Client talks to an agent: the Go API behind `kazasu push` and
// `kazasu status`.
type Client struct {
	// Base is "http://host:8074".
	Base string
	HTTP *http.Client // nil: a client with a 10-minute timeout
}

// APIError is a refusal or failure reported by the agent.
type APIError struct {
	Status int
	ErrorBody
}

func (e *APIError) Error() string {
	return fmt.Sprintf("agent answered %d (%s): %s", e.Status, e.Kind, e.ErrorBody.Error)
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 10 * time.Minute}
}

func (c *Client) do(req *http.Request, want int, out any) error {
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("updateagent client: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("updateagent client: reading the answer: %w", err)
	}
	if resp.StatusCode != want {
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(b, &e.ErrorBody) != nil || e.ErrorBody.Error == "" {
			e.ErrorBody = ErrorBody{Error: strings.TrimSpace(string(b)), Kind: "http"}
		}
		return e
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("updateagent client: %w", err)
	}
	return nil
}

// Push uploads a bundle (size bytes from r). On success the agent has
// written and verified the slot and armed the trial; follow with Wait.
func (c *Client) Push(ctx context.Context, r io.Reader, size int64) (*Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/v1/bundle", r)
	if err != nil {
		return nil, fmt.Errorf("updateagent client: %w", err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	var st Status
	if err := c.do(req, http.StatusAccepted, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Status fetches the agent's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/v1/status", nil)
	if err != nil {
		return nil, fmt.Errorf("updateagent client: %w", err)
	}
	var st Status
	if err := c.do(req, http.StatusOK, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Wait polls Status every interval until the update of build is settled
// (Last.Build == build with outcome committed, rolled-back or failed, and
// the agent idle), tolerating the board being unreachable while it
// reboots. It returns the final status; ctx bounds the wait.
func (c *Client) Wait(ctx context.Context, build uint64, interval time.Duration, progress func(*Status, error)) (*Status, error) {
	for {
		st, err := c.Status(ctx)
		if progress != nil {
			progress(st, err)
		}
		if err == nil && st.Phase == "idle" && st.Last != nil && st.Last.Build == build &&
			(st.Last.Outcome == slot.Committed || st.Last.Outcome == slot.RolledBack || st.Last.Outcome == slot.Failed) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("phase %s", st.Phase)
			}
			return st, fmt.Errorf("updateagent client: build %d not settled: %w (last: %v)", build, ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

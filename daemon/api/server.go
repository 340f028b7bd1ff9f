package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"kazasu/daemon/httpserve"
)

// Limits.
const (
	MaxBody       = 4 << 10 // any request body
	MaxPINBody    = 64      // the PIN body
	MaxStreams    = 32      // concurrent event streams
	MinTokenBytes = 32      // bearer token length
)

var (
	reTx      = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	reReader  = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	reService = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
)

// Options configures New.
type Options struct {
	Engine    Engine       // required
	Log       *slog.Logger // request log (method, path, status, duration); nil discards
	Heartbeat time.Duration
	// Token is the bearer token required on TCP listeners (ServeTCP).
	Token []byte
}

// Server is the kiosk API server.
type Server struct {
	eng       Engine
	log       *slog.Logger
	heartbeat time.Duration
	tokenHash [32]byte
	hasToken  bool
	streams   atomic.Int32
}

// New returns a server for opts.Engine.
func New(opts Options) (*Server, error) {
	if opts.Engine == nil {
		return nil, errors.New("api: no engine")
	}
	s := &Server{eng: opts.Engine, log: opts.Log, heartbeat: opts.Heartbeat}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.heartbeat <= 0 {
		s.heartbeat = 15 * time.Second
	}
	if opts.Token != nil {
		if len(opts.Token) < MinTokenBytes {
			return nil, fmt.Errorf("api: bearer token shorter than %d bytes", MinTokenBytes)
		}
		s.tokenHash, s.hasToken = sha256.Sum256(opts.Token), true
	}
	return s, nil
}

// ReadToken reads a bearer token file (surrounding whitespace trimmed).
func ReadToken(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("api: token: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinTokenBytes {
		return nil, fmt.Errorf("api: token in %s is shorter than %d bytes", path, MinTokenBytes)
	}
	return b, nil
}

// Handler returns the API handler without authentication (for the unix
// socket, where the file mode is the access control).
func (s *Server) Handler() http.Handler { return s.logged(http.HandlerFunc(s.route)) }

// TokenHandler returns the API handler requiring the bearer token.
func (s *Server) TokenHandler() http.Handler {
	return s.logged(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kazasud"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
			return
		}
		s.route(w, r)
	}))
}

func (s *Server) authorized(r *http.Request) bool {
	if !s.hasToken {
		return false
	}
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return false
	}
	got := sha256.Sum256([]byte(tok)) // hashing first: the compare leaks no length
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
	w.ResponseWriter.WriteHeader(s)
}
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logged logs method, path, status and duration: never bodies or headers.
func (s *Server) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		s.log.Info("api", "method", r.Method, "path", r.URL.Path, "status", sw.status, "dur", time.Since(start).Round(time.Microsecond).String())
	})
}

// ErrorBody is every error answer.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encoding failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var e ErrorBody
	e.Error.Code, e.Error.Message = code, msg
	writeJSON(w, status, &e)
}

// engineError maps an Engine error to an answer. Messages are fixed
// strings: an engine error is never echoed (it could quote anything).
func engineError(w http.ResponseWriter, err error) {
	for _, m := range []struct {
		err    error
		status int
		code   string
	}{
		{ErrUnknownReader, 404, "unknown_reader"},
		{ErrReaderBusy, 409, "reader_busy"},
		{ErrReaderOffline, 503, "reader_offline"},
		{ErrUnknownService, 400, "unknown_service"},
		{ErrUnknownTx, 404, "unknown_transaction"},
		{ErrWrongState, 409, "wrong_state"},
		{ErrLastTryUnconfirm, 409, "last_try_unconfirmed"},
		{ErrTxEnded, 409, "transaction_ended"},
		{ErrBusy, 503, "busy"},
		{context.Canceled, 503, "cancelled"},
		{context.DeadlineExceeded, 503, "timeout"},
	} {
		if errors.Is(err, m.err) {
			writeError(w, m.status, m.code, m.err.Error())
			return
		}
	}
	writeError(w, http.StatusInternalServerError, "internal", "engine error")
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+allow)
}

// route dispatches by path, then checks the method (JSON 405s).
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/v1/readers":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"readers": s.eng.Readers(r.Context())})
	case p == "/v1/transactions":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		s.start(w, r)
	case p == "/v1/events":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		s.stream(w, r, "")
	case strings.HasPrefix(p, "/v1/transactions/"):
		rest := strings.TrimPrefix(p, "/v1/transactions/")
		id, action, _ := strings.Cut(rest, "/")
		if !reTx.MatchString(id) || strings.Contains(action, "/") {
			writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
			return
		}
		want := http.MethodPost
		if action == "" || action == "events" {
			want = http.MethodGet
		}
		switch action {
		case "", "events", "pin", "confirm-last-try", "cancel":
		default:
			writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
			return
		}
		if r.Method != want {
			methodNotAllowed(w, want)
			return
		}
		switch action {
		case "":
			st, err := s.eng.Status(r.Context(), id)
			if err != nil {
				engineError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, &st)
		case "events":
			s.stream(w, r, id)
		case "pin":
			s.pin(w, r, id)
		case "confirm-last-try":
			s.simple(w, r, id, s.eng.ConfirmLastTry)
		case "cancel":
			s.simple(w, r, id, s.eng.Cancel)
		}
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	}
}

func jsonContent(w http.ResponseWriter, r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
		return false
	}
	return true
}

// readBody reads at most limit bytes into buf-backed storage.
func readBody(w http.ResponseWriter, r *http.Request, buf []byte) (int, bool) {
	n, err := io.ReadFull(http.MaxBytesReader(w, r.Body, int64(len(buf)-1)), buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return n, true
	case err == nil:
		// Unreachable: MaxBytesReader stops one byte short of filling buf.
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body larger than %d bytes", len(buf)-1))
		return 0, false
	default:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body larger than %d bytes", len(buf)-1))
		} else {
			writeError(w, http.StatusBadRequest, "bad_body", "reading the body failed")
		}
		return 0, false
	}
}

// StartRequest is the body of POST /v1/transactions.
type StartRequest struct {
	Reader  string `json:"reader"`
	Service string `json:"service"`
}

// DecodeStart strictly decodes a StartRequest.
func DecodeStart(b []byte) (StartRequest, error) {
	var req StartRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("api: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, errors.New("api: trailing data after the JSON object")
	}
	if !reReader.MatchString(req.Reader) {
		return req, errors.New("api: reader must match [a-z0-9_-]{1,32}")
	}
	if !reService.MatchString(req.Service) {
		return req, errors.New("api: service must match [a-z0-9_]{1,32}")
	}
	return req, nil
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	if !jsonContent(w, r) {
		return
	}
	buf := make([]byte, MaxBody+1)
	n, ok := readBody(w, r, buf)
	if !ok {
		return
	}
	req, err := DecodeStart(buf[:n])
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	st, err := s.eng.Start(r.Context(), req.Reader, req.Service)
	if err != nil {
		engineError(w, err)
		return
	}
	w.Header().Set("Location", "/v1/transactions/"+st.ID)
	writeJSON(w, http.StatusCreated, &st)
}

// ErrBadPIN is returned by ParsePIN. Its text never quotes the input.
var ErrBadPIN = errors.New(`api: the body must be exactly {"pin":"dddd"} with 4 ASCII digits`)

// ParsePIN parses exactly {"pin":"dddd"} (JSON whitespace allowed between
// tokens, nothing else: no other keys, no escapes) and copies the digits
// into pin. It never retains b.
func ParsePIN(b []byte, pin *[4]byte) error {
	i := 0
	ws := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
	}
	lit := func(s string) bool {
		ws()
		if len(b)-i < len(s) || string(b[i:i+len(s)]) != s {
			return false
		}
		i += len(s)
		return true
	}
	if !lit("{") || !lit(`"pin"`) || !lit(":") || !lit(`"`) {
		return ErrBadPIN
	}
	if len(b)-i < 5 {
		return ErrBadPIN
	}
	for k := range 4 {
		c := b[i+k]
		if c < '0' || c > '9' {
			*pin = [4]byte{}
			return ErrBadPIN
		}
		pin[k] = c
	}
	i += 4
	if b[i] != '"' {
		*pin = [4]byte{}
		return ErrBadPIN
	}
	i++
	if !lit("}") {
		*pin = [4]byte{}
		return ErrBadPIN
	}
	ws()
	if i != len(b) {
		*pin = [4]byte{}
		return ErrBadPIN
	}
	return nil
}

func (s *Server) pin(w http.ResponseWriter, r *http.Request, id string) {
	if !jsonContent(w, r) {
		return
	}
	var buf [MaxPINBody + 1]byte
	var pin [4]byte
	defer func() { clear(buf[:]); clear(pin[:]) }()
	n, ok := readBody(w, r, buf[:])
	if !ok {
		return
	}
	if err := ParsePIN(buf[:n], &pin); err != nil {
		writeError(w, http.StatusBadRequest, "bad_pin_format", ErrBadPIN.Error())
		return
	}
	if err := s.eng.SubmitPIN(r.Context(), id, pin[:]); err != nil {
		engineError(w, err)
		return
	}
	s.accepted(w, r, id)
}

func (s *Server) simple(w http.ResponseWriter, r *http.Request, id string, f func(context.Context, string) error) {
	// The body, if any, must be empty or {}.
	var buf [MaxPINBody + 1]byte
	n, ok := readBody(w, r, buf[:])
	if !ok {
		return
	}
	if body := bytes.TrimSpace(buf[:n]); len(body) != 0 && string(body) != "{}" {
		writeError(w, http.StatusBadRequest, "bad_request", "the body must be empty or {}")
		return
	}
	if err := f(r.Context(), id); err != nil {
		engineError(w, err)
		return
	}
	s.accepted(w, r, id)
}

// accepted answers 202 with the current snapshot.
func (s *Server) accepted(w http.ResponseWriter, r *http.Request, id string) {
	st, err := s.eng.Status(r.Context(), id)
	if err != nil {
		engineError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, &st)
}

// stream serves Server-Sent Events: one "transaction" event per snapshot
// (id: Seq), comments as heartbeats. A per-transaction stream ends after the
// Final event; a stream whose subscriber fell behind ends too (the client
// reconnects and gets fresh snapshots).
func (s *Server) stream(w http.ResponseWriter, r *http.Request, tx string) {
	if s.streams.Add(1) > MaxStreams {
		s.streams.Add(-1)
		writeError(w, http.StatusServiceUnavailable, "too_many_streams", "too many event streams open")
		return
	}
	defer s.streams.Add(-1)
	events, cancel, err := s.eng.Subscribe(tx)
	if err != nil {
		engineError(w, err)
		return
	}
	defer cancel()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 2000\n\n")) {
		return
	}
	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if !write([]byte(": keepalive\n\n")) {
				return
			}
		case ev, ok := <-events:
			if !ok {
				return
			}
			b, err := json.Marshal(&ev)
			if err != nil {
				return
			}
			if !write([]byte("id: " + strconv.FormatUint(ev.Seq, 10) + "\nevent: transaction\ndata: " + string(b) + "\n\n")) {
				return
			}
		}
	}
}

// ListenUnix listens on a unix socket at path with the given file mode,
// replacing a stale socket (one nobody answers on) but refusing to take
// over a live one or any other kind of file.
func ListenUnix(path string, mode os.FileMode) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("api: %s exists and is not a socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("api: %s: another process is serving on it", path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("api: %s: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("api: removing stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api: %w", err)
	}
	return ln, nil
}

// CheckLoopback refuses a TCP listener that is not on a loopback address.
func CheckLoopback(ln net.Listener) error {
	a, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !a.IP.IsLoopback() {
		return fmt.Errorf("api: %s is not a loopback TCP address", ln.Addr())
	}
	return nil
}

// Serve serves h on ln with read, write and idle timeouts until ctx is
// done, then shuts down (5 s grace; event streams are cut). Cancellation
// is not an error.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second, // event streams extend it per write
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if err := httpserve.Run(ctx, srv, ln, 5*time.Second); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

package revocation

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"kazasu/drivers/sim/testpki"
)

// responder is an httptest OCSP responder signing with the issuing root.
type responder struct {
	status     atomic.Int32 // ocsp.Good / Revoked / Unknown
	nextUpdate time.Duration
	wrongKey   bool
	hits       atomic.Int32
}

func (rs *responder) handler(t *testing.T, gen int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil || r.Header.Get("Content-Type") != "application/ocsp-request" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		ca, key := th.Root(testpki.Auth, gen)
		if rs.wrongKey {
			_, key = th.Root(testpki.Auth, 1)
		}
		tmpl := ocsp.Response{
			Status:       int(rs.status.Load()),
			SerialNumber: req.SerialNumber,
			ThisUpdate:   t0.Add(-time.Minute),
			NextUpdate:   t0.Add(rs.nextUpdate),
			RevokedAt:    t0.Add(-time.Hour),
			IssuerHash:   crypto.SHA1,
		}
		resp, err := ocsp.CreateResponse(ca, ca, tmpl, key)
		if err != nil {
			t.Errorf("responder: %v", err)
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	})
}

func TestOCSPClient(t *testing.T) {
	id, err := th.Issue(testpki.SamplePerson("OCSP0001"), testpki.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs := &responder{nextUpdate: time.Hour}
	srv := httptest.NewServer(rs.handler(t, 3))
	defer srv.Close()
	c := &OCSPClient{URL: srv.URL, HTTP: srv.Client()}
	ctx := context.Background()

	rs.status.Store(ocsp.Good)
	if r, err := c.Status(ctx, id.AuthCert, id.AuthCA, t0); err != nil || r.Status != Good || r.Source != SourceOnline {
		t.Fatalf("good: %+v %v", r, err)
	}
	rs.status.Store(ocsp.Revoked)
	if r, err := c.Status(ctx, id.AuthCert, id.AuthCA, t0); err != nil || r.Status != Revoked {
		t.Fatalf("revoked: %+v %v", r, err)
	}
	rs.status.Store(ocsp.Unknown)
	if _, err := c.Status(ctx, id.AuthCert, id.AuthCA, t0); !errors.Is(err, ErrOnline) {
		t.Fatalf("unknown: err = %v", err)
	}
	rs.status.Store(ocsp.Good)
	if _, err := c.Status(ctx, id.AuthCert, id.AuthCA, t0.Add(2*time.Hour)); !errors.Is(err, ErrOnline) {
		t.Fatalf("expired response: err = %v", err)
	}
	if _, err := c.Status(ctx, id.AuthCert, id.AuthCA, t0.Add(-time.Hour)); !errors.Is(err, ErrOnline) {
		t.Fatalf("response from the future: err = %v", err)
	}
	rs.wrongKey = true
	if _, err := c.Status(ctx, id.AuthCert, id.AuthCA, t0); !errors.Is(err, ErrOnline) {
		t.Fatalf("response signed by another key: err = %v", err)
	}
	rs.wrongKey = false
	bad := &OCSPClient{URL: srv.URL + "/nothing-here", HTTP: &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 503, Status: "503 Service Unavailable", Body: io.NopCloser(bytes.NewReader(nil))}, nil
	})}}
	if _, err := bad.Status(ctx, id.AuthCert, id.AuthCA, t0); !errors.Is(err, ErrOnline) {
		t.Fatalf("HTTP 503: err = %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCheckerOnlineFallback(t *testing.T) {
	id, err := th.Issue(testpki.SamplePerson("OCSP0002"), testpki.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	// The CRL lists the certificate; it goes stale after 24 h.
	crl, err := th.CRL(testpki.Auth, 3, []testpki.Revoked{{Serial: id.AuthCert.SerialNumber, Time: t0}}, t0, t0.Add(24*time.Hour), testpki.CRLOptions{Number: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Import(bytes.NewReader(crl), roots(t)); err != nil {
		t.Fatal(err)
	}
	rs := &responder{nextUpdate: 100 * time.Hour}
	rs.status.Store(ocsp.Good)
	srv := httptest.NewServer(rs.handler(t, 3))
	defer srv.Close()
	c := &Checker{Sets: st, Online: &OCSPClient{URL: srv.URL, HTTP: srv.Client()}}
	ctx := context.Background()
	// Fresh CRL: revoked, no online query.
	if r, err := c.Check(ctx, id.AuthCert, id.AuthCA, t0.Add(time.Hour)); err != nil || r.Status != Revoked || rs.hits.Load() != 0 {
		t.Fatalf("fresh CRL: %+v %v hits=%d", r, err, rs.hits.Load())
	}
	// The sign certificate is not listed: stale → online says good.
	crlS, _ := th.CRL(testpki.Sign, 3, nil, t0, t0.Add(time.Hour), testpki.CRLOptions{Number: big.NewInt(1)})
	if _, err := st.Import(bytes.NewReader(crlS), roots(t)); err != nil {
		t.Fatal(err)
	}
	srvS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := ocsp.ParseRequest(body)
		ca, key := th.Root(testpki.Sign, 3)
		resp, _ := ocsp.CreateResponse(ca, ca, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: t0, NextUpdate: t0.Add(100 * time.Hour)}, key)
		w.Write(resp)
	}))
	defer srvS.Close()
	c.Online = &OCSPClient{URL: srvS.URL, HTTP: srvS.Client()}
	if r, err := c.Check(ctx, id.SignCert, id.SignCA, t0.Add(2*time.Hour)); err != nil || r.Status != Good || r.Source != SourceOnline {
		t.Fatalf("stale CRL, online good: %+v %v", r, err)
	}
	// Online down: fail closed with the online error attached.
	c.Online = &OCSPClient{URL: "http://127.0.0.1:1", HTTP: &http.Client{Timeout: time.Second}}
	_, err = c.Check(ctx, id.SignCert, id.SignCA, t0.Add(2*time.Hour))
	if !errors.Is(err, ErrStale) || !errors.Is(err, ErrOnline) {
		t.Fatalf("stale CRL, online down: err = %v", err)
	}
}

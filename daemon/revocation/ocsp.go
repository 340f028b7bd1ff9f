package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSPClient is an Online checker speaking OCSP (RFC 6960) over HTTP POST.
// The response must be signed by the issuer or by a responder certificate
// the issuer delegated (id-kp-OCSPSigning), for the right serial, and
// current: thisUpdate not after now+MaxSkew, nextUpdate (when present)
// not before now.
type OCSPClient struct {
	URL     string
	HTTP    *http.Client  // nil: a client with a 5 s timeout
	MaxSkew time.Duration // tolerated responder clock lead
	// MaxAge bounds the age of a response without nextUpdate; zero: 1 hour.
	MaxAge time.Duration
}

var _ Online = (*OCSPClient)(nil)

const maxOCSPResponse = 64 << 10

// Status implements Online.
func (o *OCSPClient) Status(ctx context.Context, cert, issuer *x509.Certificate, now time.Time) (Result, error) {
	req, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return Result{}, fmt.Errorf("%w: building request: %w", ErrOnline, err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL, bytes.NewReader(req))
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrOnline, err)
	}
	hr.Header.Set("Content-Type", "application/ocsp-request")
	hr.Header.Set("Accept", "application/ocsp-response")
	client := o.HTTP
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := client.Do(hr)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrOnline, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Result{}, fmt.Errorf("%w: HTTP %s", ErrOnline, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPResponse+1))
	if err != nil {
		return Result{}, fmt.Errorf("%w: reading response: %w", ErrOnline, err)
	}
	if len(body) > maxOCSPResponse {
		return Result{}, fmt.Errorf("%w: response larger than %d bytes", ErrOnline, maxOCSPResponse)
	}
	r, err := ocsp.ParseResponseForCert(body, cert, issuer)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrOnline, err)
	}
	if r.SerialNumber == nil || r.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		return Result{}, fmt.Errorf("%w: response for another serial", ErrOnline)
	}
	if r.ThisUpdate.After(now.Add(o.MaxSkew)) {
		return Result{}, fmt.Errorf("%w: response thisUpdate %s is in the future", ErrOnline, r.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !r.NextUpdate.IsZero() && now.After(r.NextUpdate) {
		return Result{}, fmt.Errorf("%w: response expired at %s", ErrOnline, r.NextUpdate.UTC().Format(time.RFC3339))
	}
	maxAge := o.MaxAge
	if maxAge == 0 {
		maxAge = time.Hour
	}
	if r.NextUpdate.IsZero() && now.Sub(r.ThisUpdate) > maxAge {
		return Result{}, fmt.Errorf("%w: response older than %s", ErrOnline, maxAge)
	}
	res := Result{Source: SourceOnline, ThisUpdate: r.ThisUpdate, NextUpdate: r.NextUpdate}
	switch r.Status {
	case ocsp.Good:
		res.Status = Good
	case ocsp.Revoked:
		res.Status = Revoked
	default:
		res.Status = Unknown
		return res, fmt.Errorf("%w: responder does not know the certificate", ErrOnline)
	}
	return res, nil
}

package terminal

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"kazasu/daemon/relay"
	"kazasu/daemon/revocation"
)

// statusClient is the issuance service's online status endpoint
// (*relay.Client).
type statusClient interface {
	Status(ctx context.Context, issuerHex, serialHex string) (*relay.CertStatus, error)
}

// onlineStatus is the revocation checker's online hook backed by the
// issuance service's status endpoint (GET /v1/status/{issuer}/{serial}),
// asked when the local CRL for the issuer is stale or missing.
type onlineStatus struct{ c statusClient }

var _ revocation.Online = onlineStatus{}

// maxStatusAge bounds how old an online answer may be to count as fresh.
const maxStatusAge = 10 * time.Minute

func (o onlineStatus) Status(ctx context.Context, cert, issuer *x509.Certificate, now time.Time) (revocation.Result, error) {
	name := sha256.Sum256(issuer.RawSubject)
	st, err := o.c.Status(ctx, hex.EncodeToString(name[:]), hex.EncodeToString(revocation.SerialBytes(cert.SerialNumber)))
	if err != nil {
		return revocation.Result{}, fmt.Errorf("terminal: online status: %w", err)
	}
	if d := now.Sub(st.CheckedAt); d > maxStatusAge || d < -maxStatusAge {
		return revocation.Result{}, fmt.Errorf("terminal: online status checked at %s, not fresh at %s", st.CheckedAt.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	r := revocation.Result{Source: revocation.SourceOnline, ThisUpdate: st.CheckedAt}
	switch st.Status {
	case relay.StatusGood:
		r.Status = revocation.Good
	case relay.StatusRevoked:
		r.Status = revocation.Revoked
	default:
		r.Status = revocation.Unknown
	}
	return r, nil
}

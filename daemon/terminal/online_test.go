package terminal

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"kazasu/daemon/relay"
	"kazasu/daemon/revocation"
)

type fakeStatus struct {
	st             relay.CertStatus
	issuer, serial string
	err            error
}

func (f *fakeStatus) Status(ctx context.Context, issuer, serial string) (*relay.CertStatus, error) {
	f.issuer, f.serial = issuer, serial
	return &f.st, f.err
}

func TestOnlineStatus(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	issuer := &x509.Certificate{RawSubject: []byte{0x30, 0x00}, Subject: pkix.Name{CommonName: "x"}}
	cert := &x509.Certificate{SerialNumber: big.NewInt(0x1234)}
	for _, tc := range []struct {
		status string
		at     time.Time
		want   revocation.Status
		err    bool
	}{
		{relay.StatusGood, now.Add(-time.Minute), revocation.Good, false},
		{relay.StatusRevoked, now, revocation.Revoked, false},
		{relay.StatusUnknown, now, revocation.Unknown, false},
		{relay.StatusGood, now.Add(-time.Hour), 0, true}, // stale answer
	} {
		f := &fakeStatus{st: relay.CertStatus{Status: tc.status, CheckedAt: tc.at}}
		r, err := onlineStatus{f}.Status(context.Background(), cert, issuer, now)
		if tc.err {
			if err == nil {
				t.Fatalf("%s at %v: accepted", tc.status, tc.at)
			}
			continue
		}
		if err != nil || r.Status != tc.want || r.Source != revocation.SourceOnline {
			t.Fatalf("%s: %+v %v", tc.status, r, err)
		}
		if f.serial != "1234" || len(f.issuer) != 64 {
			t.Fatalf("asked for issuer %q serial %q", f.issuer, f.serial)
		}
	}
}

package terminal

import (
	"context"

	"kazasu/daemon/issuance"
	"kazasu/daemon/pki"
)

// IssuanceValidator adapts the terminal's validator to the reference
// issuance service, so the service validates with the same code as the
// terminal (certificate chain, profile, revocation and the challenge
// signature).
func IssuanceValidator(v *pki.Validator) issuance.Validator { return issuanceValidator{v} }

type issuanceValidator struct{ v *pki.Validator }

func (iv issuanceValidator) ValidateAuth(ctx context.Context, cert, msg, sig []byte) (issuance.Verdict, error) {
	vd := iv.v.Validate(ctx, pki.Request{Cert: cert, Expect: pki.KindAuth, Challenge: msg, Signature: sig})
	if vd.Valid {
		return issuance.Verdict{Valid: true}, nil
	}
	if rs := vd.Reasons(); len(rs) > 0 {
		return issuance.Verdict{Code: rs[0].String()}, nil
	}
	return issuance.Verdict{Code: "invalid"}, nil
}

package jpki

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"kazasu/drivers/apdu"
	"kazasu/drivers/nfc"
)

// Application identifiers (jpki.md §2).
var (
	AID     = []byte{0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01} // 公的個人認証AP
	TextAID = []byte{0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08} // 券面事項入力補助AP
	ISDAID  = []byte{0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00}                   // GlobalPlatform ISD
)

// Elementary files of the JPKI AP (jpki.md §3) and the text AP (§4.1).
const (
	EFToken    uint16 = 0x0006
	EFAuthCert uint16 = 0x000A
	EFAuthCA   uint16 = 0x000B
	EFAuthKey  uint16 = 0x0017
	EFAuthPIN  uint16 = 0x0018
	EFSignCert uint16 = 0x0001

	EFTextMyNumber uint16 = 0x0001
	EFTextBasic4   uint16 = 0x0002
	EFTextPIN      uint16 = 0x0011
)

// Token is the kind of JPKI token, from the label in EF 0006.
type Token uint8

const (
	TokenUnknown Token = iota
	TokenCard          // JPKIAPICCTOKEN2: My Number Card
	TokenAndroid       // JPKIAPGPSETOKEN: Android GP-SE
	TokenIPhone        // JPKIAPIOSTOKEN: iPhone Wallet
	TokenJuki          // JPKIAPICCTOKEN: old 住基カード (refused)
)

var tokenLabels = map[Token]string{
	TokenCard:    "JPKIAPICCTOKEN2",
	TokenAndroid: "JPKIAPGPSETOKEN",
	TokenIPhone:  "JPKIAPIOSTOKEN",
	TokenJuki:    "JPKIAPICCTOKEN",
}

// Label returns the token label as stored on the token.
func (t Token) Label() string { return tokenLabels[t] }

func (t Token) String() string {
	switch t {
	case TokenCard:
		return "card"
	case TokenAndroid:
		return "android"
	case TokenIPhone:
		return "iphone"
	case TokenJuki:
		return "juki"
	}
	return "unknown"
}

// IsPhone reports whether the token is a smartphone certificate.
func (t Token) IsPhone() bool { return t == TokenAndroid || t == TokenIPhone }

// ParseTokenLabel identifies a token from the contents of EF 0006: the first
// 32 bytes are a label padded with spaces (NULs tolerated).
func ParseTokenLabel(ef []byte) (Token, string) {
	n := min(len(ef), 32)
	label := strings.TrimRight(string(ef[:n]), " \x00")
	for t, l := range tokenLabels {
		if label == l {
			return t, label
		}
	}
	return TokenUnknown, label
}

// Errors. Status-word errors from the card additionally wrap the drivers/apdu
// kinds.
var (
	// ErrNotJPKI: the target has no JPKI AP (SELECT answered 6A82 or similar).
	ErrNotJPKI = errors.New("jpki: not a JPKI token")
	// ErrUnsupportedToken: a JPKI AP with a token this terminal refuses
	// (the old Juki card, an unknown label).
	ErrUnsupportedToken = errors.New("jpki: unsupported token")
	// ErrPINBlocked: the PIN's retry counter is exhausted; VERIFY was not
	// sent. The holder must reset it at the municipal office.
	ErrPINBlocked = errors.New("jpki: PIN blocked")
	// ErrConfirmationRequired: one try is left; VERIFY is refused unless
	// the user explicitly confirms the last attempt.
	ErrConfirmationRequired = errors.New("jpki: last PIN try needs the user's confirmation")
	// ErrPINRequired: the token wants the PIN verified first (Android
	// certificate, signing).
	ErrPINRequired = errors.New("jpki: PIN verification required first")
	// ErrNotArmed: an iPhone that was not armed (Face ID) before the tap.
	ErrNotArmed = errors.New("jpki: iPhone not armed")
	// ErrBadPINFormat: the PIN is not 4 ASCII digits; nothing was sent.
	ErrBadPINFormat = errors.New("jpki: PIN must be 4 digits")
	// ErrMalformed: the token returned data that does not parse.
	ErrMalformed = errors.New("jpki: malformed data from token")
)

// WrongPINError reports a VERIFY that the token refused.
type WrongPINError struct {
	Retries int // tries left; 0 means now blocked
}

func (e *WrongPINError) Error() string {
	if e.Retries == 0 {
		return "jpki: wrong PIN; the PIN is now blocked"
	}
	return fmt.Sprintf("jpki: wrong PIN; %d tries left", e.Retries)
}

// Is makes a wrong PIN that blocked the counter match ErrPINBlocked.
func (e *WrongPINError) Is(target error) bool { return target == ErrPINBlocked && e.Retries == 0 }

// PINStatus is the state of a PIN, read without spending a try.
type PINStatus struct {
	Retries  int  // tries left (valid when !Blocked && !Verified && !Unlimited)
	Blocked  bool // counter exhausted
	Verified bool // already verified in this session (9000 to the query)
	// Unlimited: the counter answered 6300 (no retry limit).
	Unlimited bool
}

func (s PINStatus) String() string {
	switch {
	case s.Blocked:
		return "blocked"
	case s.Verified:
		return "verified"
	case s.Unlimited:
		return "unlimited"
	}
	return fmt.Sprintf("%d tries left", s.Retries)
}

// Options tune a session to the reader path and token (quirk profiles).
type Options struct {
	// ReadChunk is the Le of short READ BINARY commands (1..256); 0 picks
	// one frame's worth from the target's FSD (FSD − 5), capped at 256.
	ReadChunk int
	// Extended allows one extended-Le READ BINARY for the certificate
	// when the reader path carries it.
	Extended bool
	// MaxCert bounds the certificate size accepted from a token.
	MaxCert int
}

// DefaultMaxCert bounds certificates: JPKI RSA-2048 certificates are about
// 1.5–2 KB; anything above 8 KiB is not a JPKI certificate.
const DefaultMaxCert = 8 << 10

// Session is an open JPKI AP on one card or phone. It is not safe for
// concurrent use.
type Session struct {
	card   nfc.Card
	opts   Options
	token  Token
	label  string
	selEF  uint16 // currently selected EF, 0 = none
	inText bool   // the text AP is selected instead of the JPKI AP
}

// Open selects the JPKI AP and identifies the token. The old Juki card and
// unknown labels are refused with ErrUnsupportedToken, targets without the
// AP with ErrNotJPKI.
func Open(ctx context.Context, card nfc.Card, opts Options) (*Session, error) {
	if opts.MaxCert <= 0 {
		opts.MaxCert = DefaultMaxCert
	}
	if opts.ReadChunk <= 0 {
		fsd := card.Target().FSD
		if fsd <= 0 {
			fsd = 256
		}
		opts.ReadChunk = min(256, max(16, fsd-5))
	}
	opts.ReadChunk = min(opts.ReadChunk, 256)
	s := &Session{card: card, opts: opts}
	if err := s.selectAP(ctx, AID); err != nil {
		return nil, err
	}
	ef, err := s.readEF(ctx, EFToken, 0, 32)
	if err != nil {
		return nil, fmt.Errorf("jpki: read token EF: %w", err)
	}
	s.token, s.label = ParseTokenLabel(ef)
	switch s.token {
	case TokenJuki:
		return nil, fmt.Errorf("%w: old Basic Resident Registry card (%s); its certificates are no longer valid", ErrUnsupportedToken, s.label)
	case TokenUnknown:
		return nil, fmt.Errorf("%w: token label %q", ErrUnsupportedToken, s.label)
	}
	return s, nil
}

// Token is the kind of token.
func (s *Session) Token() Token { return s.token }

// Tune changes how the certificate is read (a quirk profile found once the
// token label is known): Le of short reads (0 keeps the current one) and
// whether one extended READ BINARY may be tried.
func (s *Session) Tune(readChunk int, extended bool) {
	if readChunk > 0 {
		s.opts.ReadChunk = min(readChunk, 256)
	}
	s.opts.Extended = extended
}

// Label is the token label as read from EF 0006.
func (s *Session) Label() string { return s.label }

// PINBeforeCert reports whether the auth certificate can only be read after
// the auth PIN is verified (Android GP-SE, jpki.md §8.1).
func (s *Session) PINBeforeCert() bool { return s.token == TokenAndroid }

// NeedsPIN reports whether the token authenticates with a PIN typed at the
// kiosk (not an iPhone, which is armed with Face ID before the tap).
func (s *Session) NeedsPIN() bool { return s.token != TokenIPhone }

// transmit sends one command and returns the response data and status word.
// Only transport failures are errors here; status words are interpreted by
// the callers, per jpki.md.
func (s *Session) transmit(ctx context.Context, cmd apdu.Command) ([]byte, uint16, error) {
	resp, err := apdu.Transmit(ctx, s.card, cmd)
	var se *apdu.StatusError
	if err != nil && !errors.As(err, &se) {
		return nil, 0, err
	}
	return resp.Data, resp.SW, nil
}

// swErr turns an unexpected status word into an error that wraps the apdu
// kinds.
func swErr(op string, sw uint16) error {
	return fmt.Errorf("jpki: %s: %w", op, &apdu.StatusError{SW: sw})
}

func (s *Session) selectAP(ctx context.Context, aid []byte) error {
	_, sw, err := s.transmit(ctx, apdu.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, P2: 0x0C, Data: aid})
	if err != nil {
		return fmt.Errorf("jpki: select AP: %w", err)
	}
	s.selEF = 0
	switch {
	case sw == 0x9000:
		s.inText = bytes.Equal(aid, TextAID)
		return nil
	case sw == 0x6A82 || sw == 0x6A86 || sw == 0x6D00 || sw == 0x6E00 || sw == 0x6999:
		if bytes.Equal(aid, AID) {
			return fmt.Errorf("%w (SELECT answered %04X)", ErrNotJPKI, sw)
		}
		return swErr("select AP", sw)
	}
	return swErr("select AP", sw)
}

func (s *Session) selectEF(ctx context.Context, ef uint16) error {
	if s.selEF == ef {
		return nil
	}
	_, sw, err := s.transmit(ctx, apdu.Command{CLA: 0x00, INS: 0xA4, P1: 0x02, P2: 0x0C, Data: []byte{byte(ef >> 8), byte(ef)}})
	if err != nil {
		return fmt.Errorf("jpki: select EF %04X: %w", ef, err)
	}
	if sw != 0x9000 {
		s.selEF = 0
		return swErr(fmt.Sprintf("select EF %04X", ef), sw)
	}
	s.selEF = ef
	return nil
}

// readEF selects ef and reads n bytes at offset off with one short READ
// BINARY (n ≤ 256). A short answer at the end of the EF is returned as is.
func (s *Session) readEF(ctx context.Context, ef uint16, off, n int) ([]byte, error) {
	if err := s.selectEF(ctx, ef); err != nil {
		return nil, err
	}
	return s.readBinary(ctx, off, n)
}

// readBinary reads n bytes at off from the selected EF. n up to 256 uses a
// short Le, more an extended Le.
func (s *Session) readBinary(ctx context.Context, off, n int) ([]byte, error) {
	if off < 0 || off > 0x7FFF {
		return nil, fmt.Errorf("jpki: READ BINARY offset %d outside 15 bits", off)
	}
	cmd := apdu.Command{CLA: 0x00, INS: 0xB0, P1: byte(off >> 8), P2: byte(off), Ne: n}
	data, sw, err := s.transmit(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("jpki: READ BINARY at %d: %w", off, err)
	}
	switch {
	case sw == 0x9000 || sw == 0x6282:
		if len(data) > n {
			return nil, fmt.Errorf("%w: READ BINARY returned %d bytes for Le %d", ErrMalformed, len(data), n)
		}
		return data, nil
	case sw == 0x6982:
		return nil, swErr(fmt.Sprintf("READ BINARY EF %04X", s.selEF), sw)
	}
	return nil, swErr(fmt.Sprintf("READ BINARY EF %04X at %d", s.selEF, off), sw)
}

// derLength returns the total length of the DER object whose first bytes
// are hdr (tag 30, definite length, at most 3 length bytes).
func derLength(hdr []byte) (int, error) {
	if len(hdr) < 2 || hdr[0] != 0x30 {
		return 0, fmt.Errorf("%w: certificate EF does not start with a DER SEQUENCE", ErrMalformed)
	}
	l := int(hdr[1])
	if l < 0x80 {
		return 2 + l, nil
	}
	nb := l & 0x7F
	if nb == 0 || nb > 3 || len(hdr) < 2+nb {
		return 0, fmt.Errorf("%w: unsupported DER length form %02X", ErrMalformed, hdr[1])
	}
	l = 0
	for _, b := range hdr[2 : 2+nb] {
		l = l<<8 | int(b)
	}
	if l < 0x80 { // non-minimal
		return 0, fmt.Errorf("%w: non-minimal DER length", ErrMalformed)
	}
	return 2 + nb + l, nil
}

// readCert reads a DER certificate from ef: the header first, then the rest
// in one extended READ BINARY (Options.Extended) or in chunks.
func (s *Session) readCert(ctx context.Context, ef uint16) ([]byte, error) {
	hdr, err := s.readEF(ctx, ef, 0, 4)
	if err != nil {
		return nil, err
	}
	total, err := derLength(hdr)
	if err != nil {
		return nil, err
	}
	if total > s.opts.MaxCert {
		return nil, fmt.Errorf("%w: certificate of %d bytes exceeds %d", ErrMalformed, total, s.opts.MaxCert)
	}
	cert := make([]byte, 0, total)
	cert = append(cert, hdr[:min(len(hdr), total)]...)
	if s.opts.Extended && total-len(cert) > 256 {
		rest, err := s.readBinary(ctx, len(cert), total-len(cert))
		if err == nil && len(rest) == total-len(cert) {
			return append(cert, rest...), nil
		}
		// Fall back to short reads: the token or path refused extended Le.
		if err != nil && !errors.Is(err, apdu.ErrWrongLength) && !errors.Is(err, apdu.ErrWrongP1P2) && !errors.Is(err, nfc.ErrNotSupported) {
			return nil, err
		}
	}
	for len(cert) < total {
		n := min(s.opts.ReadChunk, total-len(cert))
		b, err := s.readBinary(ctx, len(cert), n)
		if err != nil {
			return nil, err
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: certificate EF ended at %d of %d bytes", ErrMalformed, len(cert), total)
		}
		cert = append(cert, b...)
	}
	return cert[:total], nil
}

// ReadAuthCert reads the user-authentication certificate (EF 000A) as DER.
// On Android it needs the auth PIN verified first (ErrPINRequired); on an
// unarmed iPhone it answers ErrNotArmed.
func (s *Session) ReadAuthCert(ctx context.Context) ([]byte, error) {
	if s.inText {
		if err := s.selectAP(ctx, AID); err != nil {
			return nil, err
		}
	}
	cert, err := s.readCert(ctx, EFAuthCert)
	if err != nil {
		return nil, s.securityErr(err)
	}
	return cert, nil
}

// ReadAuthCACert reads the auth CA certificate the token carries (EF 000B).
// Validation must use the pinned J-LIS roots, not this copy.
func (s *Session) ReadAuthCACert(ctx context.Context) ([]byte, error) {
	cert, err := s.readCert(ctx, EFAuthCA)
	if err != nil {
		return nil, s.securityErr(err)
	}
	return cert, nil
}

// securityErr maps 6982 (security status not satisfied) to the token's
// meaning of it.
func (s *Session) securityErr(err error) error {
	if !errors.Is(err, apdu.ErrSecurityStatus) {
		return err
	}
	if s.token == TokenIPhone {
		return fmt.Errorf("%w: %w", ErrNotArmed, err)
	}
	return fmt.Errorf("%w: %w", ErrPINRequired, err)
}

// pinStatus queries the PIN at ef with an empty VERIFY (consumes no try).
func (s *Session) pinStatus(ctx context.Context, ef uint16) (PINStatus, error) {
	if err := s.selectEF(ctx, ef); err != nil {
		return PINStatus{}, err
	}
	_, sw, err := s.transmit(ctx, apdu.Command{CLA: 0x00, INS: 0x20, P1: 0x00, P2: 0x80})
	if err != nil {
		return PINStatus{}, fmt.Errorf("jpki: PIN status: %w", err)
	}
	return interpretPINStatus(sw, s.token)
}

func interpretPINStatus(sw uint16, tok Token) (PINStatus, error) {
	switch {
	case sw == 0x9000:
		return PINStatus{Verified: true}, nil
	case sw == 0x63C0 || sw == 0x6983 || sw == 0x6984:
		return PINStatus{Blocked: true}, nil
	case sw&0xFFF0 == 0x63C0:
		return PINStatus{Retries: int(sw & 0x0F)}, nil
	case sw == 0x6300:
		return PINStatus{Unlimited: true}, nil
	case sw == 0x6982 && tok == TokenIPhone:
		return PINStatus{}, fmt.Errorf("jpki: PIN status: %w", ErrNotArmed)
	}
	return PINStatus{}, swErr("PIN status", sw)
}

// AuthPINStatus reads the auth PIN's retry counter without spending a try.
// On an armed iPhone it reports Verified; on an unarmed one ErrNotArmed.
func (s *Session) AuthPINStatus(ctx context.Context) (PINStatus, error) {
	if s.inText {
		if err := s.selectAP(ctx, AID); err != nil {
			return PINStatus{}, err
		}
	}
	return s.pinStatus(ctx, EFAuthPIN)
}

// ValidPIN reports whether pin is exactly 4 ASCII digits.
func ValidPIN(pin []byte) bool {
	if len(pin) != 4 {
		return false
	}
	for _, c := range pin {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// verify runs the safety rules around one VERIFY of the 4-digit PIN at ef:
// read the counter first; never VERIFY a blocked PIN; refuse at one try left
// unless confirmLastTry; send VERIFY once and never retry it. It returns the
// counter state seen before the attempt.
func (s *Session) verify(ctx context.Context, ef uint16, pin []byte, confirmLastTry bool) (PINStatus, error) {
	if !ValidPIN(pin) {
		return PINStatus{}, ErrBadPINFormat
	}
	st, err := s.pinStatus(ctx, ef)
	if err != nil {
		return st, err
	}
	switch {
	case st.Verified:
		return st, nil
	case st.Blocked:
		return st, ErrPINBlocked
	case !st.Unlimited && st.Retries <= 1 && !confirmLastTry:
		return st, fmt.Errorf("%w (%d try left)", ErrConfirmationRequired, st.Retries)
	}
	data := append([]byte(nil), pin...)
	defer clear(data) // best effort: keep the PIN's lifetime short
	_, sw, err := s.transmit(ctx, apdu.Command{CLA: 0x00, INS: 0x20, P1: 0x00, P2: 0x80, Data: data})
	if err != nil {
		// The attempt may or may not have reached the counter: never retry.
		return st, fmt.Errorf("jpki: VERIFY (not retried): %w", err)
	}
	switch {
	case sw == 0x9000:
		return st, nil
	case sw == 0x63C0 || sw == 0x6983 || sw == 0x6984:
		return st, &WrongPINError{Retries: 0}
	case sw&0xFFF0 == 0x63C0:
		return st, &WrongPINError{Retries: int(sw & 0x0F)}
	}
	return st, swErr("VERIFY", sw)
}

// VerifyAuthPIN verifies the 4-digit auth PIN (EF 0018) under the safety
// rules: see the package doc. confirmLastTry must come from the user's
// explicit confirmation on the kiosk screen, never from code.
func (s *Session) VerifyAuthPIN(ctx context.Context, pin []byte, confirmLastTry bool) (PINStatus, error) {
	if s.token == TokenIPhone {
		return PINStatus{}, fmt.Errorf("jpki: an iPhone is unlocked with Face ID, not a PIN: %w", ErrUnsupportedToken)
	}
	if s.inText {
		if err := s.selectAP(ctx, AID); err != nil {
			return PINStatus{}, err
		}
	}
	return s.verify(ctx, EFAuthPIN, pin, confirmLastTry)
}

// DigestInfoSHA256 returns the DER DigestInfo of SHA-256(msg), the input the
// card signs with PKCS#1 v1.5 (jpki.md §5.2).
func DigestInfoSHA256(msg []byte) []byte {
	h := sha256.Sum256(msg)
	prefix := []byte{0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	return append(prefix, h[:]...)
}

// SignAuth signs digestInfo (1..245 bytes, normally DigestInfoSHA256 of the
// service's challenge) with the auth key (EF 0017). The PIN must have been
// verified (or the iPhone armed).
func (s *Session) SignAuth(ctx context.Context, digestInfo []byte) ([]byte, error) {
	if len(digestInfo) == 0 || len(digestInfo) > 245 {
		return nil, fmt.Errorf("jpki: sign: input of %d bytes, want 1..245", len(digestInfo))
	}
	if s.inText {
		if err := s.selectAP(ctx, AID); err != nil {
			return nil, err
		}
	}
	if err := s.selectEF(ctx, EFAuthKey); err != nil {
		return nil, s.securityErr(err)
	}
	sig, sw, err := s.transmit(ctx, apdu.Command{CLA: 0x80, INS: 0x2A, P1: 0x00, P2: 0x80, Data: digestInfo, Ne: 256})
	if err != nil {
		return nil, fmt.Errorf("jpki: COMPUTE DIGITAL SIGNATURE: %w", err)
	}
	if sw != 0x9000 {
		return nil, s.securityErr(swErr("COMPUTE DIGITAL SIGNATURE", sw))
	}
	if len(sig) != 256 {
		return nil, fmt.Errorf("%w: signature of %d bytes, want 256 (RSA-2048)", ErrMalformed, len(sig))
	}
	return sig, nil
}

// Close clears the token's security state: the last-command indicator on
// iPhones, then SELECT of the GlobalPlatform ISD (jpki.md §1, §5.5 step 8).
// Errors are reported but the session is finished either way.
func (s *Session) Close(ctx context.Context) error {
	var errs []error
	if s.token == TokenIPhone {
		if _, sw, err := s.transmit(ctx, apdu.Command{CLA: 0x80, INS: 0xFC, P1: 0x00, P2: 0x00}); err != nil {
			errs = append(errs, err)
		} else if sw != 0x9000 {
			errs = append(errs, swErr("last command indicator", sw))
		}
	}
	if _, sw, err := s.transmit(ctx, apdu.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, P2: 0x0C, Data: ISDAID}); err != nil {
		errs = append(errs, err)
	} else if sw != 0x9000 && sw != 0x6A82 {
		// Phones have no ISD to select; 6A82 still deselects the JPKI AP.
		errs = append(errs, swErr("select ISD", sw))
	}
	s.selEF = 0
	return errors.Join(errs...)
}

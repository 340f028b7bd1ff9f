package card

import (
	"bytes"
	"crypto"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"kazasu/drivers/sim/rf"
)

// Timing is the processing time an applet reports per APDU (never slept:
// the PICC hands it to the RF model, which turns long ones into S(WTX)).
type Timing struct {
	APDU   time.Duration // every APDU
	Verify time.Duration // added to VERIFY / CHANGE REFERENCE DATA with data (counter write)
	Sign   time.Duration // added to COMPUTE DIGITAL SIGNATURE (RSA-2048 private key)
}

// DefaultTiming: 1 ms per APDU, 10 ms more for a PIN check, 300 ms for an
// RSA-2048 signature (iso14443b.md §6.7: 60–700 ms on comparable chips).
var DefaultTiming = Timing{APDU: time.Millisecond, Verify: 10 * time.Millisecond, Sign: 300 * time.Millisecond}

// flavour is what differs between token kinds at APDU level.
type flavour struct {
	label string // EF 0006 label, "" = no JPKI AP
	model string // CK_TOKEN_INFO model
	// authCertNeedsPIN: EF 000A readable only after the auth PIN (Android
	// GP-SE, jpki.md §8.1).
	authCertNeedsPIN bool
	// iphone: arming model (see the package doc).
	iphone bool
	textAP bool
}

// Applet is the ISO/IEC 7816-4 content of a simulated token: the GP ISD
// selected at power-on, the JPKI AP and (on cards) the text AP, with one
// security state. It implements [rf.Applet] and is safe for concurrent use.
type Applet struct {
	mu     sync.Mutex
	fl     flavour
	timing Timing
	// shortOnly: extended-length APDUs are answered 6700.
	shortOnly bool
	// chunk > 0: responses with more data are cut into chunks fetched by
	// GET RESPONSE after 61xx (quirk). pending holds the rest.
	chunk     int
	pending   []byte
	pendingSW SW
	// exactLe: a READ BINARY crossing the end of the EF answers 6Cxx (xx =
	// bytes available) instead of returning them with 6282 (quirk).
	exactLe bool
	rng     *rand.ChaCha8

	apps  []*dfApp
	isd   *dfApp
	cur   *dfApp
	curEF *ef
	pins  map[PIN]*pinState
	armed bool
	// counts of APDUs processed since the last Reset, for tests and traces.
	processed int
}

var _ rf.Applet = (*Applet)(nil)

// Reset is power loss: the ISD is selected again and the whole security
// state (verified PINs) is gone. Retry counters and an iPhone's armed
// state are not volatile and survive.
func (a *Applet) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cur, a.curEF = a.isd, nil
	a.clearSecurity()
	a.processed = 0
	a.pending = nil
}

// Arm starts an iPhone's armed session (Face ID done); no effect on other
// kinds.
func (a *Applet) Arm() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fl.iphone {
		a.armed = true
	}
}

// Disarm ends an armed session and clears the security state.
func (a *Applet) Disarm() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.armed = false
	a.clearSecurity()
}

// Armed reports whether the iPhone is armed.
func (a *Applet) Armed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.armed
}

// Tries returns the tries left of a PIN, false if the token has none.
func (a *Applet) Tries(p PIN) (int, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.pins[p]
	if !ok {
		return 0, false
	}
	return s.tries, true
}

// SetTries sets the tries left of a PIN (0 = blocked), as an office reset
// or a test set-up does.
func (a *Applet) SetTries(p PIN, n int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.pins[p]
	if !ok {
		return fmt.Errorf("card: token has no %v", p)
	}
	if n < 0 || n > s.max {
		return fmt.Errorf("card: %v tries %d outside 0…%d", p, n, s.max)
	}
	s.tries = n
	if n == 0 {
		s.verified = false
	}
	return nil
}

// PINValue returns the current value of a PIN, false if there is none.
func (a *Applet) PINValue(p PIN) (Secret, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.pins[p]
	if !ok {
		return "", false
	}
	return Secret(s.value), true
}

// Verified reports whether a PIN is verified in the current security
// state.
func (a *Applet) Verified(p PIN) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.pins[p]
	return ok && s.verified
}

// Processed returns the number of APDUs processed since the last Reset.
func (a *Applet) Processed() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.processed
}

func (a *Applet) clearSecurity() {
	for _, p := range a.pins {
		p.verified = false
	}
}

// satisfied reports whether the security state grants what p protects.
func (a *Applet) satisfied(p *pinState) bool {
	if p == nil || p.verified {
		return true
	}
	// An armed iPhone has done Face ID for the user-authentication
	// identity; the signature identity is not granted (package doc).
	return a.fl.iphone && a.armed && p.ref == PINAuthRef
}

// Process runs one command APDU. It never panics and always answers at least
// SW1 SW2.
func (a *Applet) Process(apdu []byte) ([]byte, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.processed++
	proc := a.timing.APDU
	var (
		data  []byte
		sw    SW
		extra time.Duration
	)
	c, err := parseCommand(apdu)
	switch {
	case err != nil:
		a.pending, sw = nil, SWWrongLength
	case c.CLA == 0x00 && c.INS == 0xC0:
		data, sw = a.getResponse(c)
	default:
		a.pending = nil // any other command drops an unfetched response
		data, sw, extra = a.process(c)
		if a.chunk > 0 && len(data) > a.chunk {
			a.pending, a.pendingSW = data[a.chunk:], sw
			data, sw = data[:a.chunk], moreData(len(a.pending))
		}
	}
	proc += extra
	out := make([]byte, 0, len(data)+2)
	out = append(out, data...)
	return append(out, sw.Bytes()...), proc
}

func (a *Applet) process(c command) ([]byte, SW, time.Duration) {
	if c.Extended && a.shortOnly {
		return nil, SWWrongLength, 0
	}
	cla := decodeCLA(c.CLA)
	switch {
	case !cla.valid:
		return nil, SWCLANotSupported, 0
	case cla.channel != 0:
		return nil, SWChannelNotSupp, 0
	case cla.chaining:
		return nil, SWChainingNotSupp, 0
	case cla.sm && c.INS == 0xA4:
		return nil, SWSMNotSupp, 0
	case cla.sm:
		return nil, SWSMObjectsIncorrect, 0
	}
	if cla.proprietary {
		switch c.INS {
		case 0x2A:
			return a.sign(c)
		case 0xFC:
			sw := a.lastCommand(c)
			return nil, sw, 0
		case 0xA4, 0xB0, 0x20, 0x24, 0x84:
			return nil, SWCLANotSupported, 0
		}
		return nil, SWINSNotSupported, 0
	}
	switch c.INS {
	case 0xA4:
		return nil, a.selectFile(c), 0
	case 0xB0:
		data, sw := a.readBinary(c)
		return data, sw, 0
	case 0x20:
		sw := a.verify(c)
		if len(c.Data) > 0 {
			return nil, sw, a.timing.Verify
		}
		return nil, sw, 0
	case 0x24:
		return nil, a.changeReference(c), a.timing.Verify
	case 0x84:
		data, sw := a.getChallenge(c)
		return data, sw, 0
	case 0x70: // MANAGE CHANNEL: only the basic channel exists
		return nil, SWChannelNotSupp, 0
	case 0x2A, 0xFC:
		return nil, SWCLANotSupported, 0
	}
	return nil, SWINSNotSupported, 0
}

// moreData is 61xx: xx more bytes (00 = 256 or more) for GET RESPONSE.
func moreData(n int) SW { return 0x6100 | SW(min(n, 256)&0xFF) }

// getResponse is GET RESPONSE 00 C0 00 00 Le (ISO/IEC 7816-4 §7.6.1),
// served only by profiles that answer 61xx.
func (a *Applet) getResponse(c command) ([]byte, SW) {
	switch {
	case a.chunk == 0:
		return nil, SWINSNotSupported
	case c.P1 != 0 || c.P2 != 0:
		return nil, SWWrongP1P2
	case !c.HasLe || len(c.Data) > 0:
		return nil, SWWrongLength
	case a.pending == nil:
		return nil, SWConditionsNotSat
	}
	n := min(c.Ne, len(a.pending))
	data := a.pending[:n]
	if rest := a.pending[n:]; len(rest) > 0 {
		a.pending = rest
		return data, moreData(len(rest))
	}
	a.pending = nil
	return data, a.pendingSW
}

// selectFile is SELECT (jpki.md §5.1): by DF name (P1 04), EF under the
// current DF (P1 02); P2 00 or 0C, no FCI is returned either way.
func (a *Applet) selectFile(c command) SW {
	if c.P2 != 0x0C && c.P2 != 0x00 {
		return SWWrongP1P2
	}
	switch c.P1 {
	case 0x04:
		if len(c.Data) == 0 || len(c.Data) > 16 {
			return SWWrongLength
		}
		app := a.findApp(c.Data)
		if app == nil {
			return SWNotFound
		}
		if app != a.cur {
			// jpki.md §1: selecting another application (the ISD
			// included) clears the security status.
			a.clearSecurity()
		}
		a.cur, a.curEF = app, nil
		return SWOK
	case 0x02:
		if len(c.Data) != 2 {
			return SWWrongLength
		}
		e := a.cur.lookup(uint16(c.Data[0])<<8 | uint16(c.Data[1]))
		if e == nil {
			return SWNotFound
		}
		a.curEF = e
		return SWOK
	case 0x00:
		// jpki.md §1: "select MF" is unreliable: 6A86 in the power-on
		// state, 9000 without effect once a DF is selected, 3F00 → 6A82.
		if a.cur == a.isd {
			return SWWrongP1P2
		}
		if len(c.Data) == 0 {
			return SWOK
		}
		return SWNotFound
	}
	return SWWrongP1P2
}

// findApp selects by full DF name, or by a prefix of at least 5 bytes (the
// RID) of a DF name, first in card order (JICSAP 4.2 permits partial names).
func (a *Applet) findApp(name []byte) *dfApp {
	for _, d := range a.apps {
		if bytes.Equal(d.aid, name) {
			return d
		}
	}
	if len(name) < 5 {
		return nil
	}
	for _, d := range a.apps {
		if bytes.HasPrefix(d.aid, name) {
			return d
		}
	}
	return nil
}

// readBinary is READ BINARY (jpki.md §5.1, iso14443b.md §5.3): 15-bit offset
// in P1-P2 on the current EF, or P1 = 80|SFI selecting the EF with an 8-bit
// offset in P2. Short or extended Le. Past the end: 6B00; a read that
// crosses the end returns what there is with 6282 (ISO/IEC 7816-4).
func (a *Applet) readBinary(c command) ([]byte, SW) {
	if !c.HasLe || len(c.Data) > 0 {
		return nil, SWWrongLength
	}
	var e *ef
	var off int
	if c.P1&0x80 != 0 {
		sfi := c.P1 & 0x1F
		if c.P1&0x60 != 0 || sfi == 0 || sfi == 0x1F {
			return nil, SWWrongP1P2
		}
		if e = a.cur.lookup(uint16(sfi)); e == nil {
			return nil, SWNotFound
		}
		a.curEF = e
		off = int(c.P2)
	} else {
		if e = a.curEF; e == nil {
			return nil, SWNoCurrentEF
		}
		off = int(c.P1)<<8 | int(c.P2)
	}
	if !e.transparent() {
		return nil, SWIncompatibleFile
	}
	if !a.satisfied(e.readPIN) {
		return nil, SWSecurityNotSat
	}
	if off >= len(e.data) {
		return nil, SWWrongOffset
	}
	end := off + c.Ne
	if end > len(e.data) {
		if a.exactLe && len(e.data)-off < 256 {
			return nil, 0x6C00 | SW(len(e.data)-off)
		}
		return append([]byte(nil), e.data[off:]...), SWEndOfFile
	}
	return append([]byte(nil), e.data[off:end]...), SWOK
}

// pinForP2 resolves the key reference of VERIFY / CHANGE REFERENCE DATA:
// P2 80 = the PIN of the current EF, P2 80|SFI names it directly.
func (a *Applet) pinForP2(p2 byte) (*pinState, SW) {
	var e *ef
	switch {
	case p2 == 0x80:
		e = a.curEF
	case p2&0xE0 == 0x80 && p2 != 0x9F:
		e = a.cur.lookup(uint16(p2 & 0x1F))
	default:
		return nil, SWWrongP1P2
	}
	if e == nil || e.pin == nil {
		return nil, SWRefDataNotFound
	}
	return e.pin, SWOK
}

// verify is VERIFY (jpki.md §5.1, §6): no data = retry counter query, 63Cx;
// a wrong value counts down 63C2, 63C1, 63C0 (the exhausting attempt); once
// the counter is 0, 6984 to every VERIFY, query included. A correct value
// resets the counter.
func (a *Applet) verify(c command) SW {
	if c.P1 != 0x00 {
		return SWWrongP1P2
	}
	p, sw := a.pinForP2(c.P2)
	if sw != SWOK {
		return sw
	}
	if a.fl.iphone {
		// Face ID replaces the PIN: nothing typed at the reader is
		// checked or counted (package doc).
		switch {
		case len(c.Data) > 0:
			return SWConditionsNotSat
		case a.satisfied(p):
			return SWOK
		}
		return SWSecurityNotSat
	}
	if p.tries == 0 {
		return SWRefDataBlocked
	}
	if len(c.Data) == 0 {
		return Retries(p.tries)
	}
	if !p.format.lengthOK(len(c.Data)) {
		return SWWrongLength
	}
	if p.matches(c.Data) {
		p.tries, p.verified = p.max, true
		return SWOK
	}
	p.tries--
	p.verified = false
	return Retries(p.tries)
}

// changeReference is CHANGE REFERENCE DATA 00 24 01 80|SFI with the new
// value only, allowed after VERIFY in this session (jpki.md §5.1).
func (a *Applet) changeReference(c command) SW {
	if c.P1 != 0x01 {
		return SWWrongP1P2
	}
	p, sw := a.pinForP2(c.P2)
	switch {
	case sw != SWOK:
		return sw
	case a.fl.iphone:
		return SWConditionsNotSat
	case p.tries == 0:
		return SWRefDataBlocked
	case !p.verified:
		return SWSecurityNotSat
	case !p.format.valid(c.Data):
		return SWWrongData
	}
	p.value = append([]byte(nil), c.Data...)
	return SWOK
}

// getChallenge is GET CHALLENGE 00 84 00 00 Le (1..256); extended Le is
// refused with 6985 (jpki.md §5.1, LOW).
func (a *Applet) getChallenge(c command) ([]byte, SW) {
	switch {
	case c.P1 != 0 || c.P2 != 0:
		return nil, SWWrongP1P2
	case !c.HasLe || len(c.Data) > 0:
		return nil, SWWrongLength
	case c.Extended:
		return nil, SWConditionsNotSat
	}
	out := make([]byte, c.Ne)
	_, _ = a.rng.Read(out)
	return out, SWOK
}

// lastCommand is 80 FC 00 00, the iPhone JPKI profile's last command
// indicator (jpki.md §8.2): the iPhone answers 9000 and ends the armed
// session; everything else answers 6700 as the card does.
func (a *Applet) lastCommand(c command) SW {
	if !a.fl.iphone {
		return SWWrongLength
	}
	if c.P1 != 0 || c.P2 != 0 {
		return SWWrongP1P2
	}
	if len(c.Data) > 0 {
		return SWWrongLength
	}
	a.armed = false
	a.clearSecurity()
	return SWOK
}

// sign is COMPUTE DIGITAL SIGNATURE 80 2A P1 P2 (jpki.md §5.1, §5.2). P2 80
// uses the key of the current EF, 80|SFI names it (97 auth, 9A sign). P1 00
// pads exactly the data given with PKCS#1 v1.5 type 1 (1..245 bytes); P1
// 01..05 are the other modes measured on a card (§5.2, LOW-MED).
func (a *Applet) sign(c command) ([]byte, SW, time.Duration) {
	if c.P1 > 0x05 {
		return nil, SWWrongP1P2, 0
	}
	var e *ef
	switch {
	case c.P2 == 0x80:
		e = a.curEF
	case c.P2&0xE0 == 0x80 && c.P2 != 0x9F:
		e = a.cur.lookup(uint16(c.P2 & 0x1F))
	default:
		return nil, SWWrongP1P2, 0
	}
	if e == nil || e.key == nil {
		return nil, SWRefDataNotFound, 0
	}
	if !a.satisfied(e.keyPIN) {
		return nil, SWSecurityNotSat, 0
	}
	if len(c.Data) == 0 {
		return nil, SWWrongLength, 0
	}
	sig, sw := signWith(e.key, c.P1, c.Data)
	if sw != SWOK {
		return nil, sw, 0
	}
	return sig, SWOK, a.timing.Sign
}

func signWith(key *rsa.PrivateKey, mode byte, data []byte) ([]byte, SW) {
	var (
		sig []byte
		err error
	)
	switch mode {
	case 0x00: // caller's DigestInfo (or any bytes), type-1 padded as is
		if len(data) > key.Size()-11 {
			return nil, SWWrongLength
		}
		sig, err = rsa.SignPKCS1v15(nil, key, crypto.Hash(0), data)
	case 0x01: // card hashes, signs the bare hash
		h := sha256.Sum256(data)
		sig, err = rsa.SignPKCS1v15(nil, key, crypto.Hash(0), h[:])
	case 0x02: // 32-byte hash given, card wraps it in DigestInfo
		if len(data) != sha256.Size {
			return nil, SWWrongLength
		}
		sig, err = rsa.SignPKCS1v15(nil, key, crypto.SHA256, data)
	case 0x03: // card hashes and wraps: sha256WithRSAEncryption
		h := sha256.Sum256(data)
		sig, err = rsa.SignPKCS1v15(nil, key, crypto.SHA256, h[:])
	case 0x04: // RSASSA-PSS over a given SHA-256 hash
		if len(data) != sha256.Size {
			return nil, SWWrongLength
		}
		sig, err = rsa.SignPSS(crand.Reader, key, crypto.SHA256, data, nil)
	case 0x05: // RSASSA-PSS, card hashes
		h := sha256.Sum256(data)
		sig, err = rsa.SignPSS(crand.Reader, key, crypto.SHA256, h[:], nil)
	default:
		return nil, SWWrongP1P2
	}
	if err != nil {
		return nil, SWConditionsNotSat
	}
	return sig, SWOK
}

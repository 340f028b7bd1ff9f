package card

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"kazasu/drivers/iso14443"
	"kazasu/drivers/isodep"
	"kazasu/drivers/nfc"
	"kazasu/drivers/sim/rf"
)

// State is the ISO/IEC 14443-3 state of a token's PICC (Type A §6.3,
// Type B §7.3), plus the ISO 14443-4 protocol state.
type State uint8

const (
	StateOff      State = iota // POWER-OFF: no field
	StateIdle                  // IDLE: waits for REQA/WUPA or REQB/WUPB
	StateReadyReq              // Type B READY-REQUESTED: waits for its slot marker
	StateReady                 // Type A READY (anticollision) / Type B READY-DECLARED (ATQB sent)
	StateActive                // Type A ACTIVE (selected, waits for RATS) / Type B ACTIVE (ISO-DEP after ATTRIB)
	StateProtocol              // Type A after RATS: ISO-DEP
	StateHalt                  // HALT: answers only WUPA / WUPB
	StateDropped               // simulated RF drop: silent until the field goes off
)

func (s State) String() string {
	switch s {
	case StateOff:
		return "off"
	case StateIdle:
		return "idle"
	case StateReadyReq:
		return "ready-requested"
	case StateReady:
		return "ready"
	case StateActive:
		return "active"
	case StateProtocol:
		return "protocol"
	case StateHalt:
		return "halt"
	case StateDropped:
		return "dropped"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Token is a simulated card or phone: an ISO 14443-3 PICC (Type A and/or B
// activation), the ISO-DEP PICC of drivers/isodep, and an [Applet] behind
// it. It implements [rf.PICC] and is safe for concurrent use.
type Token struct {
	kind   Kind
	prof   Profile
	creds  *Credentials
	holder Holder
	app    *Applet

	mu      sync.Mutex
	picc    *isodep.PICC
	idRNG   *rand.ChaCha8 // PUPI/UID draws, one per power-up
	slots   *rand.ChaCha8 // Type B slot draws
	fixed   []byte        // PUPI/UID when not random
	state   State
	tech    nfc.Tech // technology of the activation in progress
	woke    bool     // activation started from HALT (falls back to HALT)
	id      []byte   // PUPI or UID of this power-up
	level   int      // Type A cascade level, 0-based
	slot    int      // Type B chosen slot, 1-based
	taps    int      // power-ups so far
	apdus   int      // APDUs delivered in this power-up
	extATQB bool     // Type B: ATQB extended in this activation
	ppsOK   bool     // Type A: a PPS request may come (first frame after ATS)
	ppsCID  int      // Type A: CID given in RATS
}

var _ rf.PICC = (*Token)(nil)

// New builds a token of the given kind. Options may name a profile (the
// kind's own by default) and override its knobs; see [Options.Set].
func New(kind Kind, opts Options) (*Token, error) {
	fl, ok := kind.flavour()
	if !ok {
		return nil, fmt.Errorf("card: unknown kind %q", kind)
	}
	prof, err := resolveProfile(kind, &opts)
	if err != nil {
		return nil, err
	}
	seed := opts.Seed
	if seed == "" {
		seed = "kazasu"
	}
	pkiSeed := opts.PKISeed
	if pkiSeed == "" {
		pkiSeed = DefaultPKISeed
	}
	holder := defaultHolder(seed)
	if opts.Holder != nil {
		holder = *opts.Holder
	}
	if err := holder.Check(); err != nil {
		return nil, err
	}
	var creds *Credentials
	if fl.label != "" {
		creds = opts.Credentials
		if creds == nil {
			ck := kind
			if ck == KindIPhoneArmed {
				ck = KindIPhone
			}
			if creds, err = defaultCredentials(pkiSeed, seed, ck, holder); err != nil {
				return nil, err
			}
		}
		if err := creds.Check(); err != nil {
			return nil, err
		}
	}
	pins, err := pinSettings(kind, opts)
	if err != nil {
		return nil, err
	}
	app := newApplet(appletConfig{
		fl:        fl,
		creds:     creds,
		holder:    holder,
		pins:      pins,
		timing:    prof.Timing,
		shortOnly: prof.ShortOnly,
		chunk:     prof.ResponseChunk,
		exactLe:   prof.ExactLe,
		exactEF:   prof.ExactEF,
		serial:    serialNumber(seed, kind),
		rng:       seedFor(seed, "challenge"),
	})
	if kind == KindIPhoneArmed {
		app.armed = true
	}
	t := &Token{kind: kind, prof: prof, creds: creds, holder: holder, app: app, state: StateOff}
	t.idRNG = seedFor(seed, "id/"+string(kind)).chacha()
	t.slots = seedFor(seed, "slots/"+string(kind)).chacha()
	t.fixed = slices.Clone(prof.ID)
	if t.fixed == nil {
		t.fixed = t.randomID()
	}
	t.picc = isodep.NewPICC(isodep.PICCConfig{
		FSC: iso14443.FrameSize(prof.FSCI),
		FWT: iso14443.FWT(prof.FWI),
		CID: -1,
		WTX: prof.WTX,
	}, t.handle)
	return t, nil
}

// NewProfile builds the token of a named profile (its Kind and knobs).
func NewProfile(name string, opts Options) (*Token, error) {
	p, ok := LookupProfile(name)
	if !ok {
		return nil, fmt.Errorf("card: no profile %q", name)
	}
	opts.Profile = name
	return New(p.Kind, opts)
}

// Make builds a token from a name that is either a standard kind or a
// profile of the table (kinds first), as reader URIs and scenario files
// name them.
func Make(name string, opts Options) (*Token, error) {
	if k, err := ParseKind(name); err == nil {
		return New(k, opts)
	}
	if _, ok := LookupProfile(name); ok {
		return NewProfile(name, opts)
	}
	return nil, fmt.Errorf("card: %q is neither a kind nor a profile", name)
}

func resolveProfile(kind Kind, opts *Options) (Profile, error) {
	var prof Profile
	switch {
	case opts.Custom != nil:
		prof = opts.Custom.clone()
	default:
		name := opts.Profile
		if name == "" {
			name = string(kind)
		}
		p, ok := LookupProfile(name)
		if !ok {
			return Profile{}, fmt.Errorf("card: no profile %q", name)
		}
		prof = p
	}
	for _, s := range opts.sets {
		if err := opts.apply(s.key, s.value, &prof); err != nil {
			return Profile{}, err
		}
	}
	if err := prof.normalize(); err != nil {
		return Profile{}, err
	}
	return prof, nil
}

// normalize validates a profile's values and fills the UID size default.
func (p *Profile) normalize() error {
	if len(p.Techs) == 0 {
		return errors.New("card: profile answers on no technology")
	}
	for _, t := range p.Techs {
		if t != nfc.TechA && t != nfc.TechB {
			return fmt.Errorf("card: profile: unknown technology %v", t)
		}
	}
	switch {
	case p.FSCI > iso14443.MaxFSCI:
		return fmt.Errorf("card: profile: FSCI %d > %d", p.FSCI, iso14443.MaxFSCI)
	case p.FWI > 14, p.SFGI > 14:
		return errors.New("card: profile: FWI and SFGI must be 0…14")
	case p.MBLI > 15 || p.ADC > 3:
		return errors.New("card: profile: MBLI or ADC out of range")
	case len(p.Historical) > 15:
		return errors.New("card: profile: more than 15 historical bytes")
	case p.ResponseChunk < 0 || p.ResponseChunk > 256:
		return errors.New("card: profile: response chunk outside 0…256")
	}
	if p.UIDSize == 0 {
		p.UIDSize = 4
	}
	if p.UIDSize != 4 && p.UIDSize != 7 && p.UIDSize != 10 {
		return fmt.Errorf("card: profile: UID size %d", p.UIDSize)
	}
	if p.ID != nil {
		want := p.idLen()
		if len(p.ID) != want {
			return fmt.Errorf("card: profile: fixed ID of %d bytes, want %d", len(p.ID), want)
		}
		if want > 4 && p.ID[0] == 0x88 {
			return errors.New("card: profile: UID0 88 is the cascade tag")
		}
	}
	return nil
}

// idLen is the length of the token's identifier: the UID size when it
// answers on Type A (a dual token uses the UID's first 4 bytes as PUPI),
// else 4 (PUPI).
func (p *Profile) idLen() int {
	if slices.Contains(p.Techs, nfc.TechA) {
		return p.UIDSize
	}
	return 4
}

// Default PIN values (Options fields left empty). The card's are the J-LIS
// mock defaults of jpki.md §6; a phone has its own (§8.1), different here so
// that a terminal typing the card's PIN to a phone is caught.
const (
	DefaultAuthPIN           Secret = "1234"
	DefaultSignPassword      Secret = "ABC123"
	DefaultTextPIN           Secret = "1234"
	DefaultPhoneAuthPIN      Secret = "5678"
	DefaultPhoneSignPassword Secret = "XYZ789"
)

// pinSettings resolves PIN values and counters, checking formats.
func pinSettings(kind Kind, o Options) (map[PIN]pinInit, error) {
	def := map[PIN]Secret{AuthPIN: DefaultAuthPIN, SignPassword: DefaultSignPassword, TextPIN: DefaultTextPIN}
	if kind.phone() {
		def[AuthPIN], def[SignPassword] = DefaultPhoneAuthPIN, DefaultPhoneSignPassword
	}
	given := map[PIN]Secret{AuthPIN: o.AuthPIN, SignPassword: o.SignPassword, TextPIN: o.TextPIN}
	tries := map[PIN]int{AuthPIN: o.AuthPINTries, SignPassword: o.SignPasswordTries, TextPIN: o.TextPINTries}
	out := map[PIN]pinInit{}
	for _, id := range []PIN{AuthPIN, SignPassword, TextPIN} {
		v := given[id]
		if v == "" {
			v = def[id]
		}
		if !id.format().valid([]byte(v)) {
			// The value itself is never part of the error.
			return nil, fmt.Errorf("card: %v does not have the format the card accepts", id)
		}
		n := tries[id]
		switch {
		case n == 0:
			n = id.MaxTries()
		case n == TriesBlocked:
			n = 0
		case n < 0 || n > id.MaxTries():
			return nil, fmt.Errorf("card: %v tries %d outside 0…%d", id, n, id.MaxTries())
		}
		out[id] = pinInit{value: []byte(v), tries: n}
	}
	return out, nil
}

// serialNumber is the CK_TOKEN_INFO serial: 16 digits from the seed.
func serialNumber(seed string, kind Kind) string {
	rng := seedFor(seed, "serial/"+string(kind)).chacha()
	b := make([]byte, 16)
	for i := range b {
		b[i] = '0' + byte(rng.Uint64()%10)
	}
	return string(b)
}

// randomID draws a PUPI (4 bytes) or a UID: a 4-byte random UID starts
// with 08 (ISO/IEC 14443-3 §6.4.4, as phones send); 7- and 10-byte UIDs
// get a manufacturer byte of 04.
func (t *Token) randomID() []byte {
	n := t.prof.idLen()
	id := make([]byte, n)
	_, _ = t.idRNG.Read(id)
	if slices.Contains(t.prof.Techs, nfc.TechA) {
		if n == 4 {
			id[0] = 0x08
		} else {
			id[0] = 0x04
		}
	}
	return id
}

// Kind returns the token's kind.
func (t *Token) Kind() Kind { return t.kind }

// Profile returns the token's resolved profile.
func (t *Token) Profile() Profile { return t.prof.clone() }

// Applet returns the ISO 7816-4 content, for APDU-level tests.
func (t *Token) Applet() *Applet { return t.app }

// Credentials returns the keys and certificates the token carries (nil for
// tokens without a JPKI AP).
func (t *Token) Credentials() *Credentials { return t.creds }

// Arm simulates the iPhone user's side-button double click and Face ID
// before the tap; the armed session ends with 80 FC 00 00. No effect on
// other kinds.
func (t *Token) Arm() { t.app.Arm() }

// Disarm ends an iPhone's armed session without a transaction.
func (t *Token) Disarm() { t.app.Disarm() }

// Armed reports whether an iPhone is armed.
func (t *Token) Armed() bool { return t.app.Armed() }

// PINValue returns the current value of a PIN (it changes with CHANGE
// REFERENCE DATA), as a Secret that never prints; false if the token has
// none. For tests that must type it.
func (t *Token) PINValue(p PIN) (Secret, bool) { return t.app.PINValue(p) }

// Holder returns the holder data of the text AP and the certificates.
func (t *Token) Holder() Holder { return t.holder }

// Tries returns the tries left of a PIN (false if the token has none).
func (t *Token) Tries(p PIN) (int, bool) { return t.app.Tries(p) }

// SetTries sets the tries left of a PIN (0 = blocked).
func (t *Token) SetTries(p PIN, n int) error { return t.app.SetTries(p, n) }

// State returns the PICC state.
func (t *Token) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state
}

// ID returns the PUPI or UID of the current power-up (nil when off).
func (t *Token) ID() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.id)
}

// Taps returns the number of power-ups so far.
func (t *Token) Taps() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.taps
}

// String names the token, e.g. "mynumber (profile mynumber-fsc48)".
func (t *Token) String() string {
	return fmt.Sprintf("%s (profile %s)", t.kind, t.prof.Name)
}

// Techs lists the technologies the token answers on.
func (t *Token) Techs() []nfc.Tech { return slices.Clone(t.prof.Techs) }

// FieldOn powers the token up: IDLE, a new PUPI/UID if random, fresh
// ISO-DEP state; the applet starts with the ISD selected.
func (t *Token) FieldOn() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state != StateOff {
		return
	}
	t.taps++
	t.apdus = 0
	t.state = StateIdle
	t.id = t.fixed
	if t.prof.RandomID {
		t.id = t.randomID()
	}
	t.picc.Reset()
	t.app.Reset()
}

// FieldOff powers the token down: every volatile state (ISO-DEP, security
// status) is lost.
func (t *Token) FieldOff() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == StateOff {
		return
	}
	t.state = StateOff
	t.id = nil
	t.picc.Reset()
	t.app.Reset()
}

// Exchange delivers one PCD frame (without CRC).
func (t *Token) Exchange(f rf.Frame) (rf.Frame, time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == StateOff || t.state == StateDropped || !slices.Contains(t.prof.Techs, f.Tech) {
		return rf.Frame{}, 0, false
	}
	// A token in an activation on one technology ignores the other.
	if t.state != StateIdle && t.state != StateHalt && t.tech != f.Tech {
		return rf.Frame{}, 0, false
	}
	var (
		out  []byte
		proc time.Duration
		ok   bool
	)
	if f.Tech == nfc.TechB {
		out, proc, ok = t.exchangeB(f.Data)
	} else {
		out, proc, ok = t.exchangeA(f)
	}
	if t.state == StateDropped || !ok {
		return rf.Frame{}, 0, false
	}
	return rf.Frame{Tech: f.Tech, Data: out}, proc, true
}

// isoDEP passes a block to the ISO-DEP PICC; after S(DESELECT) the token
// is in HALT (only a wake-up reactivates it).
func (t *Token) isoDEP(block []byte) ([]byte, time.Duration, bool) {
	out, proc, ok := t.picc.HandleBlock(block)
	if t.picc.Deselected() {
		t.state = StateHalt
		t.woke = false
	}
	return out, proc, ok
}

// handle is the isodep Handler. It runs inside Exchange (t.mu held): it
// counts APDUs for the RF drop fault and passes the rest to the applet.
func (t *Token) handle(apdu []byte) ([]byte, time.Duration) {
	t.apdus++
	if d := t.prof.DropAtAPDU; d > 0 && t.apdus >= d && (t.prof.DropTaps == 0 || t.taps <= t.prof.DropTaps) {
		// The token leaves the field: it loses power, so the APDU is not
		// processed and the security state is gone.
		t.state = StateDropped
		t.app.Reset()
		return nil, 0
	}
	return t.app.Process(apdu)
}

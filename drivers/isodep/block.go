package isodep

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrBlock is wrapped by every error of ParseBlock and of the block builders:
// the bytes are not a valid ISO/IEC 14443-4 block (§7.1).
var ErrBlock = errors.New("isodep: invalid block")

// Kind is the type of an ISO-DEP block, from its PCB (§7.1.1.1).
type Kind uint8

const (
	// KindI is an information block carrying (part of) an APDU.
	KindI Kind = iota + 1
	// KindACK is R(ACK): positive acknowledgement (chaining, Rules 2/5/7).
	KindACK
	// KindNAK is R(NAK): negative acknowledgement, sent only by the PCD
	// (Rule 4, presence check).
	KindNAK
	// KindDeselect is S(DESELECT) (§8).
	KindDeselect
	// KindWTX is S(WTX), waiting time extension (§7.3); INF is one byte.
	KindWTX
	// KindParameters is S(PARAMETERS) (ISO/IEC 14443-4:2016); recognised so
	// that it can be refused precisely, not supported.
	KindParameters
)

func (k Kind) String() string {
	switch k {
	case KindI:
		return "I"
	case KindACK:
		return "R(ACK)"
	case KindNAK:
		return "R(NAK)"
	case KindDeselect:
		return "S(DESELECT)"
	case KindWTX:
		return "S(WTX)"
	case KindParameters:
		return "S(PARAMETERS)"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// PCB bits (§7.1.1.1, b8 = 0x80 … b1 = 0x01).
const (
	pcbTypeMask = 0xC0
	pcbI        = 0x00
	pcbR        = 0x80
	pcbS        = 0xC0
	pcbChain    = 0x10 // I: more blocks follow
	pcbNAK      = 0x10 // R: NAK
	pcbCID      = 0x08 // CID byte follows the PCB
	pcbNAD      = 0x04 // NAD byte follows (I-blocks only)
	pcbOne      = 0x02 // b2, always 1 in I, R and DESELECT/WTX
	pcbBN       = 0x01 // block number (I and R)
	pcbSMask    = 0x30 // S: 00 DESELECT, 11 WTX
	pcbRBit6    = 0x20 // R: b6 is 1
)

// MaxCID is the largest card identifier (§7.1.1.2); 15 is RFU.
const MaxCID = 14

// WTXM bounds (§7.3): the multiplier is 1…59.
const (
	MinWTXM = 1
	MaxWTXM = 59
)

// FWTMax is the largest frame waiting time, FWI 14: 2^26/fc ≈ 4.949 s. A
// temporary S(WTX) wait never exceeds it (§7.3).
const FWTMax = (1 << 26) * time.Second / 13_560_000

// Block is one decoded ISO-DEP block, without CRC.
type Block struct {
	Kind Kind
	// BN is the block number (0 or 1) of I- and R-blocks.
	BN uint8
	// Chain is the chaining bit of an I-block (more blocks follow).
	Chain bool
	// CID is the card identifier carried by the block, or -1 when the PCB
	// says none is present. Power-level bits (b8–b7 of the CID byte,
	// PICC→PCD) are dropped.
	CID int
	// NAD is the node address, or -1 when absent (I-blocks only).
	NAD int
	// INF is the information field: the APDU part of an I-block, the WTXM
	// byte of S(WTX), the TLV of S(PARAMETERS); empty otherwise.
	INF []byte
}

// WTXM returns the waiting-time multiplier of an S(WTX) block (b6–b1 of its
// INF byte; the power-level bits b8–b7 are ignored), 0 if there is none.
func (b Block) WTXM() int {
	if b.Kind != KindWTX || len(b.INF) != 1 {
		return 0
	}
	return int(b.INF[0] & 0x3F)
}

// I returns an I-block.
func I(bn uint8, chain bool, cid int, inf []byte) Block {
	return Block{Kind: KindI, BN: bn & 1, Chain: chain, CID: cid, NAD: -1, INF: inf}
}

// ACK returns R(ACK) with block number bn.
func ACK(bn uint8, cid int) Block { return Block{Kind: KindACK, BN: bn & 1, CID: cid, NAD: -1} }

// NAK returns R(NAK) with block number bn.
func NAK(bn uint8, cid int) Block { return Block{Kind: KindNAK, BN: bn & 1, CID: cid, NAD: -1} }

// Deselect returns S(DESELECT).
func Deselect(cid int) Block { return Block{Kind: KindDeselect, CID: cid, NAD: -1} }

// WTX returns S(WTX) with the given multiplier (request from the PICC, or
// the PCD's response echoing it).
func WTX(wtxm int, cid int) Block {
	return Block{Kind: KindWTX, CID: cid, NAD: -1, INF: []byte{byte(wtxm) & 0x3F}}
}

// Append encodes b after dst. It checks what the PCB can express (CID
// 0…14, NAD only on I-blocks, WTXM 1…59) and returns an error wrapping
// ErrBlock otherwise.
func (b Block) Append(dst []byte) ([]byte, error) {
	var pcb byte
	switch b.Kind {
	case KindI:
		pcb = pcbI | pcbOne | b.BN&1
		if b.Chain {
			pcb |= pcbChain
		}
	case KindACK:
		pcb = pcbR | pcbRBit6 | pcbOne | b.BN&1
	case KindNAK:
		pcb = pcbR | pcbRBit6 | pcbNAK | pcbOne | b.BN&1
	case KindDeselect:
		pcb = pcbS | pcbOne
	case KindWTX:
		pcb = pcbS | pcbSMask | pcbOne
		if m := b.WTXM(); m < MinWTXM || m > MaxWTXM {
			return dst, fmt.Errorf("%w: WTXM %d outside 1…59", ErrBlock, m)
		}
	case KindParameters:
		pcb = pcbS | pcbSMask
	default:
		return dst, fmt.Errorf("%w: kind %v", ErrBlock, b.Kind)
	}
	if b.CID >= 0 {
		if b.CID > MaxCID {
			return dst, fmt.Errorf("%w: CID %d outside 0…14", ErrBlock, b.CID)
		}
		pcb |= pcbCID
	}
	if b.NAD >= 0 {
		if b.Kind != KindI || b.NAD > 0xFF {
			return dst, fmt.Errorf("%w: NAD on %v", ErrBlock, b.Kind)
		}
		pcb |= pcbNAD
	}
	if b.Kind != KindI && b.Kind != KindWTX && b.Kind != KindParameters && len(b.INF) != 0 {
		return dst, fmt.Errorf("%w: %v carries no INF", ErrBlock, b.Kind)
	}
	dst = append(dst, pcb)
	if b.CID >= 0 {
		dst = append(dst, byte(b.CID))
	}
	if b.NAD >= 0 {
		dst = append(dst, byte(b.NAD))
	}
	return append(dst, b.INF...), nil
}

// Bytes encodes b; see Append.
func (b Block) Bytes() ([]byte, error) { return b.Append(make([]byte, 0, 3+len(b.INF))) }

// mustBytes encodes a block built by this package from checked values.
func (b Block) mustBytes() []byte {
	out, err := b.Bytes()
	if err != nil {
		panic(err) // unreachable: callers pass validated CIDs and WTXMs
	}
	return out
}

// Overhead returns the prologue length (PCB, CID, NAD) of b plus the two
// CRC bytes: the part of a frame that is not INF, as counted against FSC and
// FSD (§7.1.1).
func (b Block) Overhead() int {
	n := 3
	if b.CID >= 0 {
		n++
	}
	if b.NAD >= 0 {
		n++
	}
	return n
}

// ParseBlock decodes one received block (CRC already checked and removed).
// It rejects every PCB that §7.1.1.1 does not define — including RFU bits
// set, a NAD indicator outside I-blocks, and S(WTX) without exactly one INF
// byte — with an error wrapping ErrBlock. INF aliases frame.
func ParseBlock(frame []byte) (Block, error) {
	if len(frame) == 0 {
		return Block{}, fmt.Errorf("%w: empty frame", ErrBlock)
	}
	pcb := frame[0]
	rest := frame[1:]
	b := Block{CID: -1, NAD: -1}
	switch pcb & pcbTypeMask {
	case pcbI:
		if pcb&0x20 != 0 || pcb&pcbOne == 0 {
			return Block{}, fmt.Errorf("%w: I-block PCB %02X has RFU bits wrong", ErrBlock, pcb)
		}
		b.Kind, b.BN, b.Chain = KindI, pcb&pcbBN, pcb&pcbChain != 0
	case pcbR:
		if pcb&pcbRBit6 == 0 || pcb&pcbNAD != 0 || pcb&pcbOne == 0 {
			return Block{}, fmt.Errorf("%w: R-block PCB %02X has RFU bits wrong", ErrBlock, pcb)
		}
		b.Kind, b.BN = KindACK, pcb&pcbBN
		if pcb&pcbNAK != 0 {
			b.Kind = KindNAK
		}
	case pcbS:
		if pcb&pcbNAD != 0 || pcb&pcbBN != 0 {
			return Block{}, fmt.Errorf("%w: S-block PCB %02X has RFU bits wrong", ErrBlock, pcb)
		}
		switch {
		case pcb&pcbSMask == 0x00 && pcb&pcbOne != 0:
			b.Kind = KindDeselect
		case pcb&pcbSMask == pcbSMask && pcb&pcbOne != 0:
			b.Kind = KindWTX
		case pcb&pcbSMask == pcbSMask:
			b.Kind = KindParameters
		default:
			return Block{}, fmt.Errorf("%w: S-block PCB %02X is RFU", ErrBlock, pcb)
		}
	default:
		return Block{}, fmt.Errorf("%w: PCB %02X is RFU", ErrBlock, pcb)
	}
	if pcb&pcbCID != 0 {
		if len(rest) < 1 {
			return Block{}, fmt.Errorf("%w: PCB %02X announces a CID byte that is missing", ErrBlock, pcb)
		}
		// b8–b7 are the power level indication (PICC→PCD); b6–b5 are RFU and
		// ignored rather than refused, as readers do.
		b.CID = int(rest[0] & 0x0F)
		if b.CID > MaxCID {
			return Block{}, fmt.Errorf("%w: CID 15 is RFU", ErrBlock)
		}
		rest = rest[1:]
	}
	if pcb&pcbNAD != 0 {
		if len(rest) < 1 {
			return Block{}, fmt.Errorf("%w: PCB %02X announces a NAD byte that is missing", ErrBlock, pcb)
		}
		b.NAD = int(rest[0])
		rest = rest[1:]
	}
	switch b.Kind {
	case KindI, KindParameters:
		b.INF = rest
	case KindWTX:
		if len(rest) != 1 {
			return Block{}, fmt.Errorf("%w: S(WTX) with %d INF bytes", ErrBlock, len(rest))
		}
		b.INF = rest
	default:
		if len(rest) != 0 {
			return Block{}, fmt.Errorf("%w: %v with %d trailing bytes", ErrBlock, b.Kind, len(rest))
		}
	}
	return b, nil
}

// String renders the block as in traces: "I(1,chain) CID 2 [00 A4 …]",
// "R(ACK)(0)", "S(WTX) 12".
func (b Block) String() string {
	var s strings.Builder
	switch b.Kind {
	case KindI:
		fmt.Fprintf(&s, "I(%d", b.BN)
		if b.Chain {
			s.WriteString(",chain")
		}
		s.WriteString(")")
	case KindACK, KindNAK:
		fmt.Fprintf(&s, "%v(%d)", b.Kind, b.BN)
	case KindWTX:
		fmt.Fprintf(&s, "S(WTX) %d", b.WTXM())
	default:
		s.WriteString(b.Kind.String())
	}
	if b.CID >= 0 {
		fmt.Fprintf(&s, " CID %d", b.CID)
	}
	if b.NAD >= 0 {
		fmt.Fprintf(&s, " NAD %02X", b.NAD)
	}
	if b.Kind == KindI || b.Kind == KindParameters {
		fmt.Fprintf(&s, " [% X]", b.INF)
	}
	return s.String()
}

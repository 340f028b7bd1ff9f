package layout

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// GUID is a GPT GUID in its on-disk byte order (the first three fields
// little-endian).
type GUID [16]byte

// String is the canonical upper-case form, as the kernel's PARTUUID= and
// gokrazy's rootdev print it in lower and upper case respectively.
func (g GUID) String() string {
	return fmt.Sprintf("%08X-%04X-%04X-%02X%02X-%X",
		binary.LittleEndian.Uint32(g[0:4]), binary.LittleEndian.Uint16(g[4:6]),
		binary.LittleEndian.Uint16(g[6:8]), g[8], g[9], g[10:16])
}

// ParseGUID parses "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7".
func ParseGUID(s string) (GUID, error) {
	var g GUID
	parts := strings.Split(s, "-")
	if len(s) != 36 || len(parts) != 5 {
		return g, fmt.Errorf("layout: GUID %q: want 8-4-4-4-12 hex digits", s)
	}
	raw, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil || len(raw) != 16 {
		return g, fmt.Errorf("layout: GUID %q: not hex", s)
	}
	binary.LittleEndian.PutUint32(g[0:4], binary.BigEndian.Uint32(raw[0:4]))
	binary.LittleEndian.PutUint16(g[4:6], binary.BigEndian.Uint16(raw[4:6]))
	binary.LittleEndian.PutUint16(g[6:8], binary.BigEndian.Uint16(raw[6:8]))
	copy(g[8:], raw[8:])
	return g, nil
}

// MustParseGUID is ParseGUID for constants.
func MustParseGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

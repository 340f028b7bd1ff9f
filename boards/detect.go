package boards

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// ModelPath is where Linux exposes the device tree model string.
const ModelPath = "/proc/device-tree/model"

// UnknownBoardError reports a board that has no profile.
type UnknownBoardError struct {
	What  string // "device tree model" or "board id"
	Value string
}

func (e *UnknownBoardError) Error() string {
	ids := make([]string, len(All))
	for i, p := range All {
		ids[i] = p.ID
	}
	return fmt.Sprintf("boards: unsupported %s %q (supported: %s)", e.What, e.Value, strings.Join(ids, ", "))
}

// Match maps a device tree model string ("Raspberry Pi 4 Model B Rev 1.4",
// possibly NUL-terminated as read from /proc) to its profile. The model must
// equal a profile's Model or continue it with " Rev ", so "Raspberry Pi 3
// Model B" and "Compute Module 4S" are not mistaken for the 3B+ and CM4.
func Match(model string) (*Profile, error) {
	m := strings.TrimRight(model, "\x00\n ")
	for _, p := range All {
		if m == p.Model || strings.HasPrefix(m, p.Model+" Rev ") {
			return p, nil
		}
	}
	return nil, &UnknownBoardError{What: "device tree model", Value: m}
}

// Detect reads the model from fsys at "proc/device-tree/model" and matches
// it; pass os.DirFS("/") on a device and an fstest.MapFS in tests.
func Detect(fsys fs.FS) (*Profile, error) {
	b, err := fs.ReadFile(fsys, strings.TrimPrefix(ModelPath, "/"))
	if err != nil {
		return nil, fmt.Errorf("boards: reading device tree model: %w", err)
	}
	if len(b) > 256 || bytes.IndexByte(bytes.TrimRight(b, "\x00"), 0) >= 0 {
		return nil, fmt.Errorf("boards: malformed device tree model (%d bytes)", len(b))
	}
	return Match(string(b))
}

// DetectHost is Detect on the running system.
func DetectHost() (*Profile, error) { return Detect(os.DirFS("/")) }

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

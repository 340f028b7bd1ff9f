package issuance

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

func tlsFile(dir, name string) ([]byte, error)  { return os.ReadFile(filepath.Join(dir, name)) }
func removeFile(dir, name string) error         { return os.Remove(filepath.Join(dir, name)) }
func fmtSscanf(s string, off *int) (int, error) { return fmt.Sscanf(s, "%010d", off) }
func itoa(n int) string                         { return strconv.Itoa(n) }

package updateagent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"kazasu/firmware/layout"
)

func provisionJSON(p *layout.Provision) ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("updateagent: %w", err)
	}
	return append(b, '\n'), nil
}

// writeFileAtomic writes a file through a synced temp file and a rename.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("updateagent: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("updateagent: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("updateagent: writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("updateagent: syncing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("updateagent: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("updateagent: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("updateagent: %w", err)
	}
	defer d.Close()
	return d.Sync()
}

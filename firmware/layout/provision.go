package layout

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/url"
	"regexp"
)

// Provision is the per-board provisioning record: who the terminal is and
// whom it talks to. fwbuild -provision or `kazasu flash --provision`
// writes it raw at ProvisionOffset; on first boot the update agent copies
// it to /perm/kazasu/provision.json.
type Provision struct {
	TerminalID string `json:"terminal_id"`
	ServiceURL string `json:"service_url"`
	// CACerts are the PEM roots the terminal trusts for ServiceURL.
	CACerts string `json:"ca_certs,omitempty"`
	// ClientCert and ClientKey are the terminal's TLS identity (PEM).
	ClientCert string `json:"client_cert,omitempty"`
	ClientKey  string `json:"client_key,omitempty"`
}

const provisionMagic = "KZPROV01"

// ErrNoProvision: the gap holds no provisioning record (a generic image).
var ErrNoProvision = errors.New("layout: no provisioning record")

var terminalIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate checks every field.
func (p *Provision) Validate() error {
	if !terminalIDRE.MatchString(p.TerminalID) {
		return fmt.Errorf("layout: provision: terminal id %q (want 1-64 of A-Z a-z 0-9 . _ -)", p.TerminalID)
	}
	u, err := url.Parse(p.ServiceURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("layout: provision: service URL %q must be an https URL", p.ServiceURL)
	}
	for name, s := range map[string]string{"ca_certs": p.CACerts, "client_cert": p.ClientCert} {
		rest := []byte(s)
		for len(bytes.TrimSpace(rest)) > 0 {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil || blk.Type != "CERTIFICATE" {
				return fmt.Errorf("layout: provision: %s is not a sequence of PEM certificates", name)
			}
			if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
				return fmt.Errorf("layout: provision: %s: %w", name, err)
			}
		}
	}
	if (p.ClientCert == "") != (p.ClientKey == "") {
		return errors.New("layout: provision: client_cert and client_key go together")
	}
	if p.ClientKey != "" {
		blk, _ := pem.Decode([]byte(p.ClientKey))
		if blk == nil {
			return errors.New("layout: provision: client_key is not PEM")
		}
		if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
			return fmt.Errorf("layout: provision: client_key: %w", err)
		}
	}
	return nil
}

// EncodeProvision returns the raw record: magic, length and CRC-32 (IEEE)
// of the JSON, big-endian, then the JSON.
func EncodeProvision(p *Provision) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	js, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("layout: provision: %w", err)
	}
	if 16+len(js) > ProvisionMax {
		return nil, fmt.Errorf("layout: provision: %d bytes, room for %d", 16+len(js), ProvisionMax)
	}
	b := make([]byte, 16, 16+len(js))
	copy(b, provisionMagic)
	binary.BigEndian.PutUint32(b[8:], uint32(len(js)))
	binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(js))
	return append(b, js...), nil
}

// DecodeProvision parses a raw record (trailing bytes are ignored: the
// record sits in a larger zeroed area).
func DecodeProvision(b []byte) (*Provision, error) {
	if len(b) < 16 {
		return nil, fmt.Errorf("layout: provision: %d bytes, too short", len(b))
	}
	if string(b[:8]) != provisionMagic {
		if bytes.Equal(b[:8], make([]byte, 8)) {
			return nil, ErrNoProvision
		}
		return nil, fmt.Errorf("layout: provision: bad magic %q", b[:8])
	}
	n := int64(binary.BigEndian.Uint32(b[8:]))
	if n == 0 || 16+n > ProvisionMax || 16+n > int64(len(b)) {
		return nil, fmt.Errorf("layout: provision: length %d out of range", n)
	}
	js := b[16 : 16+n]
	if crc32.ChecksumIEEE(js) != binary.BigEndian.Uint32(b[12:]) {
		return nil, errors.New("layout: provision: CRC mismatch (torn or corrupted record)")
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var p Provision
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("layout: provision: %w", err)
	}
	if dec.More() {
		return nil, errors.New("layout: provision: trailing data")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// ReadProvision reads the record from a whole disk.
func ReadProvision(r io.ReaderAt) (*Provision, error) {
	var h [16]byte
	if _, err := r.ReadAt(h[:], ProvisionOffset); err != nil {
		return nil, fmt.Errorf("layout: provision: %w", err)
	}
	if string(h[:8]) != provisionMagic {
		return DecodeProvision(h[:])
	}
	n := int64(binary.BigEndian.Uint32(h[8:]))
	if n == 0 || 16+n > ProvisionMax {
		return nil, fmt.Errorf("layout: provision: length %d out of range", n)
	}
	b := make([]byte, 16+n)
	if _, err := r.ReadAt(b, ProvisionOffset); err != nil {
		return nil, fmt.Errorf("layout: provision: %w", err)
	}
	return DecodeProvision(b)
}

package issuance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"kazasu/daemon/httpserve"
)

// Files written by EnsureTLS into its directory.
const (
	CAFile         = "ca.pem"
	CAKeyFile      = "ca-key.pem"
	ServerCertFile = "server.pem"
	ServerKeyFile  = "server-key.pem"
	ClientCertFile = "client.pem"
	ClientKeyFile  = "client-key.pem"
)

var tlsFiles = []string{CAKeyFile, ServerKeyFile, ServerCertFile, ClientKeyFile, ClientCertFile, CAFile}

// EnsureTLS makes sure dir holds a throwaway mutual-TLS setup for tests and
// the demo: a CA (ECDSA P-256), a server certificate for localhost,
// 127.0.0.1, ::1 and hosts, and a client certificate whose common name is
// terminalID. An existing complete set is kept (terminals keep trusting
// it); a partial set is an error. Keys are written with mode 0600.
func EnsureTLS(dir, terminalID string, hosts []string) error {
	n := 0
	for _, f := range tlsFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			n++
		}
	}
	switch n {
	case len(tlsFiles):
		return nil
	case 0:
	default:
		return fmt.Errorf("issuance: %s holds an incomplete TLS set; remove it or complete it", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("issuance: %w", err)
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "kazasu reference issuance CA (throwaway)"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("issuance: CA: %w", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(cn string, eku x509.ExtKeyUsage, dns []string, ips []net.IP) ([]byte, *ecdsa.PrivateKey, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		t := &x509.Certificate{
			SerialNumber: randSerial(),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.AddDate(2, 0, 0),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{eku},
			DNSNames:     dns,
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, t, ca, &k.PublicKey, caKey)
		return der, k, err
	}
	dns := []string{"localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else if h != "" {
			dns = append(dns, h)
		}
	}
	srvDER, srvKey, err := leaf("kazasu reference issuance service", x509.ExtKeyUsageServerAuth, dns, ips)
	if err != nil {
		return fmt.Errorf("issuance: server certificate: %w", err)
	}
	cliDER, cliKey, err := leaf(terminalID, x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return fmt.Errorf("issuance: client certificate: %w", err)
	}
	writes := []struct {
		name string
		der  []byte
		key  *ecdsa.PrivateKey
	}{
		{CAKeyFile, nil, caKey}, {ServerKeyFile, nil, srvKey}, {ServerCertFile, srvDER, nil},
		{ClientKeyFile, nil, cliKey}, {ClientCertFile, cliDER, nil}, {CAFile, caDER, nil}, // CA last: a complete set
	}
	for _, w := range writes {
		var block *pem.Block
		mode := os.FileMode(0o644)
		if w.key != nil {
			b, err := x509.MarshalPKCS8PrivateKey(w.key)
			if err != nil {
				return err
			}
			block, mode = &pem.Block{Type: "PRIVATE KEY", Bytes: b}, 0o600
		} else {
			block = &pem.Block{Type: "CERTIFICATE", Bytes: w.der}
		}
		if err := writeFileSync(filepath.Join(dir, w.name), pem.EncodeToMemory(block), mode); err != nil {
			return err
		}
	}
	return nil
}

func randSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n.Add(n, big.NewInt(1))
}

func writeFileSync(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("issuance: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("issuance: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("issuance: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("issuance: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("issuance: %w", err)
	}
	return nil
}

// ServerTLSConfig returns the service's TLS configuration from an
// EnsureTLS directory: its server certificate, and client certificates
// required and verified against the directory's CA only.
func ServerTLSConfig(dir string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile))
	if err != nil {
		return nil, fmt.Errorf("issuance: server certificate: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("issuance: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("issuance: CA file holds no certificate")
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// Serve serves h over TLS on ln until ctx is done, then shuts down
// gracefully (5 s). Cancellation is not an error. Server-level errors (TLS
// handshakes refused, ...) go to log at level warn; nil discards them.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, tlsCfg *tls.Config, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if err := httpserve.Run(ctx, srv, tls.NewListener(ln, tlsCfg), 5*time.Second); err != nil {
		return fmt.Errorf("issuance: %w", err)
	}
	return nil
}

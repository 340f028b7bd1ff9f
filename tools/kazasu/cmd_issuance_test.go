package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kazasu/daemon/issuance"
	"kazasu/daemon/relay"
	"kazasu/drivers/sim/testpki"
)

func TestIssuanceServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runMain(ctx, []string{"issuance", "serve", "--listen", "127.0.0.1:0", "--tls-dir", dir, "--terminal", "kz-cli-1", "--test-roots", "--test-seed", "kazasu-cli-test"}, strings.NewReader(""), pw, &errb)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("no banner: %v (stderr %s)", err, errb.String())
	}
	go io.Copy(io.Discard, pr)
	url := strings.Fields(line)[3]
	cc, err := relay.LoadClientConfig(url, filepath.Join(dir, issuance.CAFile), filepath.Join(dir, issuance.ClientCertFile), filepath.Join(dir, issuance.ClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := relay.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id, err := testpki.New("kazasu-cli-test").Issue(testpki.SamplePerson("CLI0000001"), testpki.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	req := relay.ChallengeRequest{TerminalID: "kz-cli-1", TransactionID: "tx-1", Service: "juminhyo"}
	ch, err := c.Challenge(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(relay.Message(&req, ch))
	sig, _ := rsa.SignPKCS1v15(nil, id.AuthKey, crypto.SHA256, h[:])
	iss, err := c.Submit(ctx, "k1", relay.Submission{ChallengeID: ch.ChallengeID, TerminalID: "kz-cli-1", TransactionID: "tx-1", Service: "juminhyo",
		TokenType: relay.TokenCard, AuthCert: id.AuthDER, Signature: sig, Request: relay.ServiceRequest{Copies: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(iss.Document.Data, []byte("%PDF")) {
		t.Fatal("no PDF")
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d: %s", code, errb.String())
	}
}

func TestIssuanceUsage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if code, out, errs := run(t, "issuance", "tls", "--tls-dir", dir); code != 0 || !strings.Contains(out, dir) {
		t.Fatalf("tls: %d %q %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, issuance.ClientKeyFile)); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"issuance"}, {"issuance", "bogus"}, {"issuance", "serve", "--tls-dir", dir}, {"issuance", "serve", "--tls-dir", dir, "--test-roots", "--roots-dir", dir}, {"issuance", "serve", "--tls-dir", dir, "--test-roots", "--ttl", "1ms"}} {
		if code, _, _ := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

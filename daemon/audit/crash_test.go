package audit

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestKill9 kills a child appending (with frequent rotation) right after it
// reported record #n durable, for several n: Open must recover, every
// reported record must be there, and the whole chain must verify.
func TestKill9(t *testing.T) {
	if os.Getenv("AUDIT_CHILD") != "" {
		return
	}
	dir := t.TempDir()
	last := uint64(0)
	for round, killAt := range []uint64{40, 95, 170} {
		child := exec.Command(os.Args[0], "-test.run=^TestAuditChild$")
		child.Env = append(os.Environ(), "AUDIT_CHILD=1", "AUDIT_DIR="+dir)
		out, err := child.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		reported := uint64(0)
		for sc.Scan() {
			if n, err := strconv.ParseUint(strings.TrimPrefix(sc.Text(), "ok "), 10, 64); err == nil {
				reported = n
				if n >= killAt {
					child.Process.Kill()
					break
				}
			}
		}
		child.Wait()
		if reported < killAt {
			t.Fatalf("round %d: child reported up to %d", round, reported)
		}
		l, err := Open(dir, Options{Terminal: "kz-crash"})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		head := l.Head()
		l.Close()
		rot, _ := Rotated(dir)
		res, err := VerifyFiles(append(rot, filepath.Join(dir, LiveName)), &head)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if res.LastSeq < reported || res.LastSeq < last {
			t.Fatalf("round %d: chain ends at %d, child reported %d durable", round, res.LastSeq, reported)
		}
		last = res.LastSeq
		if len(rot) == 0 {
			t.Fatalf("round %d: no rotation happened", round)
		}
	}
}

func TestAuditChild(t *testing.T) {
	if os.Getenv("AUDIT_CHILD") == "" {
		t.Skip("only run as the child of TestKill9")
	}
	l, err := Open(os.Getenv("AUDIT_DIR"), Options{Terminal: "kz-crash", MaxBytes: 3000})
	if err != nil {
		t.Fatal(err)
	}
	for range 100000 {
		a, err := l.Append(Entry{Event: EventTap, TxID: "tx-crash", Reader: "sim0", Token: TokenCard})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ok %d\n", a.Seq)
	}
}

package terminal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"kazasu/daemon/audit"
	"kazasu/daemon/relay"
)

// journal keeps in-flight submissions as one fsync'd file each in
// data_dir/inflight, named by transaction id. A file exists from just
// before a submission is sent until its receipt is in the durable queue, so
// after a crash (kill -9, power cut) Recover knows exactly which
// submissions may have been issued without the terminal hearing the answer.
type journal struct {
	dir string
}

var reTxFile = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}\.json$`)

func (j *journal) path(tx string) (string, error) {
	if !reTxFile.MatchString(tx + ".json") {
		return "", fmt.Errorf("terminal: journal: bad transaction id %q", tx)
	}
	return filepath.Join(j.dir, tx+".json"), nil
}

// Begin writes the submission durably (temp file, fsync, rename, dir fsync).
func (j *journal) Begin(ctx context.Context, s relay.Submission) error {
	p, err := j.path(s.TransactionID)
	if err != nil {
		return err
	}
	b, err := json.Marshal(&s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(j.dir, 0o750); err != nil {
		return err
	}
	return writeFileSync(p, b)
}

// End removes a record.
func (j *journal) End(tx string) error {
	p, err := j.path(tx)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(j.dir)
}

// pending lists the recorded submissions.
func (j *journal) pending() ([]relay.Submission, error) {
	ents, err := os.ReadDir(j.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []relay.Submission
	for _, e := range ents {
		if !reTxFile.MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(j.dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var s relay.Submission
		if err := json.Unmarshal(b, &s); err != nil || s.TransactionID != strings.TrimSuffix(e.Name(), ".json") {
			// A torn or foreign file: keep it aside for the operator.
			os.Rename(filepath.Join(j.dir, e.Name()), filepath.Join(j.dir, e.Name()+".corrupt"))
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

// recoverInFlight finishes submissions interrupted by a crash: it submits
// each again with the same idempotency key (the service answers with the
// ticket it issued the first time, or issues now if the first request never
// arrived), queues an "abandoned" receipt (the person is gone, nothing was
// printed), audits it, and removes the record. A refusal removes the record
// too. It retries until ctx ends while the service is unreachable.
func (t *Terminal) recoverInFlight(ctx context.Context) {
	subs, err := t.journal.pending()
	if err != nil {
		t.Log.Error("journal unreadable", "err", err)
		return
	}
	for _, s := range subs {
		backoff := 500 * time.Millisecond
		for ctx.Err() == nil {
			issued, err := t.Relay.Submit(ctx, s.TransactionID, s)
			var re *relay.RefusedError
			if errors.As(err, &re) {
				t.Log.Warn("interrupted submission refused on recovery", "tx", s.TransactionID, "code", re.Code)
				t.appendAudit(audit.Entry{Event: audit.EventRefused, TxID: s.TransactionID, Reason: "recovery_" + re.Code})
				t.journal.End(s.TransactionID)
				break
			}
			if err != nil {
				t.Log.Warn("interrupted submission: service unreachable, retrying", "tx", s.TransactionID, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 30*time.Second)
				continue
			}
			rc := relay.Receipt{Ticket: issued.Ticket, TerminalID: s.TerminalID, TransactionID: s.TransactionID,
				Outcome: relay.OutcomeAbandoned, Pages: 0, CompletedAt: t.opts.Now().UTC()}
			if err := t.enqueueReceipt(ctx, rc); err != nil {
				t.Log.Error("recovery receipt not queued", "tx", s.TransactionID, "err", err)
				break // keep the record; try again at the next start
			}
			t.appendAudit(audit.Entry{Event: audit.EventFailed, TxID: s.TransactionID, Reason: "interrupted_abandoned"})
			t.journal.End(s.TransactionID)
			t.Log.Info("interrupted submission recovered", "tx", s.TransactionID, "ticket", issued.Ticket)
			break
		}
	}
}

// writeFileSync writes b to path atomically and durably.
func writeFileSync(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

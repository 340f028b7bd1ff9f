package queue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openT(t *testing.T, path string) *Queue {
	t.Helper()
	q, err := Open(path, Options{Backoff: Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestEnqueueValidationAndDedup(t *testing.T) {
	ctx := context.Background()
	q := openT(t, filepath.Join(t.TempDir(), "q.db"))
	defer q.Close()
	bad := []Item{
		{Key: "", Kind: "receipt"},
		{Key: "has space", Kind: "receipt"},
		{Key: "k", Kind: "Receipt"},
		{Key: "k", Kind: "receipt", Body: make([]byte, MaxBody+1)},
	}
	for _, it := range bad {
		if err := q.Enqueue(ctx, it); !errors.Is(err, ErrInvalid) {
			t.Errorf("Enqueue(%q, %q, %d bytes) = %v, want ErrInvalid", it.Key, it.Kind, len(it.Body), err)
		}
	}
	if err := q.Enqueue(ctx, Item{Key: "r/1", Kind: "receipt", Body: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, Item{Key: "r/1", Kind: "receipt", Body: []byte("a")}); err != nil {
		t.Fatalf("same key, same body: %v", err)
	}
	if err := q.Enqueue(ctx, Item{Key: "r/1", Kind: "receipt", Body: []byte("b")}); !errors.Is(err, ErrConflict) {
		t.Fatalf("same key, other body: %v", err)
	}
	if q.Len() != 1 {
		t.Fatalf("Len = %d", q.Len())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := q.Enqueue(cctx, Item{Key: "r/2", Kind: "receipt"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
}

func TestDeliveryRetryAndDeadLetter(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "q.db")
	q := openT(t, path)
	for i, k := range []string{"a", "refused", "b", "c"} {
		if err := q.Enqueue(ctx, Item{Key: k, Kind: "receipt", Body: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu       sync.Mutex
		got      []string
		attempts = map[string]int{}
	)
	done := make(chan struct{})
	send := func(ctx context.Context, it Item) error {
		mu.Lock()
		defer mu.Unlock()
		attempts[it.Key]++
		if it.Attempts != attempts[it.Key]-1 {
			t.Errorf("%s: persisted attempts %d, want %d", it.Key, it.Attempts, attempts[it.Key]-1)
		}
		switch {
		case it.Key == "refused":
			return Permanent(errors.New("service said: bad_receipt"))
		case it.Key == "b" && attempts["b"] < 4:
			return errors.New("service down")
		}
		got = append(got, it.Key)
		if len(got) == 3 {
			close(done)
		}
		return nil
	}
	errc := make(chan error, 1)
	go func() { errc <- q.Run(ctx, send) }()
	<-done
	if err := q.Run(ctx, send); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if strings.Join(got, ",") != "a,b,c" || attempts["b"] != 4 || attempts["refused"] != 1 {
		t.Fatalf("delivered %v, attempts %v", got, attempts)
	}
	if q.Len() != 0 || q.DeadLen() != 1 {
		t.Fatalf("Len %d DeadLen %d", q.Len(), q.DeadLen())
	}
	q.Close()
	q = openT(t, path) // counts survive a reopen
	defer q.Close()
	if q.Len() != 0 || q.DeadLen() != 1 {
		t.Fatalf("after reopen: Len %d DeadLen %d", q.Len(), q.DeadLen())
	}
}

func TestBackoffBounds(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	for n := 1; n <= 40; n++ {
		d := min(b.Max, b.Initial<<min(n-1, 20))
		for range 50 {
			if got := b.Delay(n); got < d/2 || got > d {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", n, got, d/2, d)
			}
		}
	}
	if d := (Backoff{}).Delay(1000); d > time.Minute {
		t.Fatalf("default cap broken: %v", d)
	}
}

// The crash test: a child process (this test binary re-executed) delivers
// to a receiver that deduplicates by idempotency key; the receiver kills the
// child with SIGKILL in the middle of a delivery (after it has applied the
// item, before it answers), twice; a third run drains the queue. Nothing may
// be lost and nothing applied twice, and only the in-flight items may be
// redelivered.
func TestKill9MidDelivery(t *testing.T) {
	if os.Getenv("QUEUE_CHILD") != "" {
		return
	}
	const n = 20
	dir := t.TempDir()
	path := filepath.Join(dir, "q.db")

	var (
		mu      sync.Mutex
		applied = map[string]int{} // key → times the effect was applied
		seen    = map[string]int{} // key → requests received
		killAt  = []int{5, 12}     // distinct deliveries at which to kill
		child   *exec.Cmd
		killed  int
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		seen[key]++
		if applied[key] == 0 {
			if string(body) != "body-"+key {
				t.Errorf("%s: body %q", key, body)
			}
			applied[key]++
		}
		if killed < len(killAt) && len(applied) == killAt[killed] {
			killed++
			child.Process.Kill() // SIGKILL: the child never sees the answer
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	runChild := func(mode string) error {
		mu.Lock()
		child = exec.Command(os.Args[0], "-test.run=^TestQueueChild$", "-test.v")
		child.Env = append(os.Environ(), "QUEUE_CHILD="+mode, "QUEUE_PATH="+path, "QUEUE_URL="+recv.URL, "QUEUE_N="+strconv.Itoa(n))
		out, _ := child.StdoutPipe()
		child.Stderr = child.Stdout
		err := child.Start()
		mu.Unlock()
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(out)
		var log []string
		for sc.Scan() {
			log = append(log, sc.Text())
		}
		err = child.Wait()
		if err != nil {
			t.Logf("child (%s) ended: %v; output:\n%s", mode, err, strings.Join(log, "\n"))
		}
		return err
	}
	if err := runChild("enqueue+deliver"); err == nil {
		t.Fatal("first child was not killed")
	}
	if err := runChild("deliver"); err == nil {
		t.Fatal("second child was not killed")
	}
	if err := runChild("drain"); err != nil {
		t.Fatalf("draining child failed: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(applied) != n {
		t.Fatalf("applied %d distinct items, want %d (lost some): %v", len(applied), n, applied)
	}
	redelivered := 0
	for k, c := range applied {
		if c != 1 {
			t.Errorf("%s applied %d times", k, c)
		}
		redelivered += seen[k] - 1
	}
	if redelivered > len(killAt) {
		t.Errorf("%d redeliveries for %d kills: %v", redelivered, len(killAt), seen)
	}
	q := openT(t, path)
	defer q.Close()
	if q.Len() != 0 {
		t.Fatalf("queue not empty after drain: %d", q.Len())
	}
}

// TestQueueChild is the child side of TestKill9MidDelivery.
func TestQueueChild(t *testing.T) {
	mode := os.Getenv("QUEUE_CHILD")
	if mode == "" {
		t.Skip("only run as the child of TestKill9MidDelivery")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q, err := Open(os.Getenv("QUEUE_PATH"), Options{Backoff: Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if strings.HasPrefix(mode, "enqueue") {
		n, _ := strconv.Atoi(os.Getenv("QUEUE_N"))
		for i := range n {
			k := fmt.Sprintf("receipt/kz-1/%03d", i)
			if err := q.Enqueue(ctx, Item{Key: k, Kind: "receipt", Body: []byte("body-" + k)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	url := os.Getenv("QUEUE_URL")
	send := func(ctx context.Context, it Item) error {
		req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(string(it.Body)))
		req.Header.Set("Idempotency-Key", it.Key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		if q.Len() == 1 && mode == "drain" {
			defer cancel() // the last item: stop after it is acked
		}
		return nil
	}
	if err := q.Run(ctx, send); err != nil {
		t.Fatal(err)
	}
	if q.Len() != 0 {
		t.Fatalf("left %d", q.Len())
	}
}

// TestKill9MidEnqueue kills a child that is enqueueing as fast as it can,
// right after it reported Enqueue #50 returned: every reported item must be
// on disk, and the file must open and deliver cleanly.
func TestKill9MidEnqueue(t *testing.T) {
	if os.Getenv("QUEUE_CHILD") != "" {
		return
	}
	path := filepath.Join(t.TempDir(), "q.db")
	child := exec.Command(os.Args[0], "-test.run=^TestQueueEnqueueChild$")
	child.Env = append(os.Environ(), "QUEUE_CHILD=enqueue-only", "QUEUE_PATH="+path)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	last := -1
	for sc.Scan() {
		if n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ok ")); err == nil {
			last = n
			if n == 50 {
				child.Process.Kill()
				break
			}
		}
	}
	child.Wait()
	if last != 50 {
		t.Fatalf("child reported up to %d", last)
	}
	q := openT(t, path)
	defer q.Close()
	items, err := q.Items(10000)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) < 51 || q.Len() != len(items) {
		t.Fatalf("%d items on disk (Len %d), want >= 51", len(items), q.Len())
	}
	for i, it := range items[:51] {
		if want := fmt.Sprintf("k%04d", i); it.Key != want {
			t.Fatalf("item %d is %q, want %q", i, it.Key, want)
		}
	}
}

func TestQueueEnqueueChild(t *testing.T) {
	if os.Getenv("QUEUE_CHILD") != "enqueue-only" {
		t.Skip("only run as the child of TestKill9MidEnqueue")
	}
	q, err := Open(os.Getenv("QUEUE_PATH"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		if err := q.Enqueue(context.Background(), Item{Key: fmt.Sprintf("k%04d", i), Kind: "audit", Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ok %d\n", i)
	}
}

func BenchmarkEnqueue(b *testing.B) {
	q, err := Open(filepath.Join(b.TempDir(), "q.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	i := 0
	for b.Loop() {
		i++
		if err := q.Enqueue(context.Background(), Item{Key: "k" + strconv.Itoa(i), Kind: "receipt", Body: make([]byte, 512)}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDamagedItemIsQuarantined(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := openT(t, filepath.Join(t.TempDir(), "q.db"))
	defer q.Close()
	for _, k := range []string{"bad", "good"} {
		if err := q.Enqueue(ctx, Item{Key: k, Kind: "receipt", Body: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	// Damage the first item's record in place.
	if err := q.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bItems).Put(seqKey(1), []byte("{not json")) }); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := q.Run(ctx, func(ctx context.Context, it Item) error {
		got = append(got, it.Key)
		cancel()
		return nil
	})
	if err != nil || strings.Join(got, ",") != "good" || q.Len() != 0 || q.DeadLen() != 1 {
		t.Fatalf("Run %v, delivered %v, Len %d, DeadLen %d", err, got, q.Len(), q.DeadLen())
	}
	// The damaged bytes are kept, and its key is free again.
	q.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bDead).Get(seqKey(1)); string(v) != "{not json" {
			t.Errorf("dead bucket holds %q", v)
		}
		if tx.Bucket(bKeys).Get([]byte("bad")) != nil {
			t.Error("key index still points at the quarantined item")
		}
		return nil
	})
}

func TestShutdownMidDeliveryKeepsItem(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	path := filepath.Join(t.TempDir(), "q.db")
	q := openT(t, path)
	defer q.Close()
	if err := q.Enqueue(ctx, Item{Key: "k", Kind: "receipt", Body: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	err := q.Run(ctx, func(ctx context.Context, it Item) error {
		cancel() // shutdown arrives while the receiver has not answered
		<-ctx.Done()
		return ctx.Err()
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	items, _ := q.Items(10)
	if len(items) != 1 || items[0].Attempts != 0 || q.DeadLen() != 0 {
		t.Fatalf("after shutdown: %+v, dead %d", items, q.DeadLen())
	}
}

package queue_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"kazasu/daemon/queue"
)

func Example() {
	dir, _ := os.MkdirTemp("", "queue-example")
	defer os.RemoveAll(dir)
	q, err := queue.Open(filepath.Join(dir, "queue.db"), queue.Options{})
	if err != nil {
		panic(err)
	}
	defer q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	// Durable once Enqueue returns; the key makes redelivery harmless.
	q.Enqueue(ctx, queue.Item{Key: "receipt/kz-1/T1", Kind: "receipt", Body: []byte(`{"ticket":"T1"}`)})
	q.Run(ctx, func(ctx context.Context, it queue.Item) error {
		fmt.Println("deliver", it.Key, string(it.Body))
		cancel() // stop after this one (it is still acknowledged)
		return nil
	})
	fmt.Println("left:", q.Len())
	// Output:
	// deliver receipt/kz-1/T1 {"ticket":"T1"}
	// left: 0
}

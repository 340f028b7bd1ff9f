package api_test

import (
	"fmt"

	"kazasu/daemon/api"
)

// An engine publishes each snapshot to a Broker and delegates Subscribe.
func ExampleBroker() {
	b := api.NewBroker(16, 64)
	b.Publish(api.TxStatus{ID: "tx-1", Reader: "sim0", Service: "juminhyo", State: api.StateWaitingForTap})
	events, cancel, _ := b.Subscribe("tx-1") // starts with the current snapshot
	defer cancel()
	b.Publish(api.TxStatus{ID: "tx-1", State: api.StateDone, Ticket: "T1", Final: true})
	for ev := range events { // closed after the final event
		fmt.Println(ev.Seq, ev.Tx.State, ev.Tx.Final)
	}
	// Output:
	// 1 waiting-for-tap false
	// 2 done true
}

package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"kazasu/daemon/queue"
)

// Queue item kinds delivered by [Client.QueueSender].
const (
	KindReceipt = "receipt"
	KindAudit   = "audit"
)

// ReceiptItem returns the queue item for a receipt; its idempotency key is
// "receipt/<terminal>/<ticket>", so a receipt is delivered once per ticket.
func ReceiptItem(r Receipt) (queue.Item, error) {
	if err := r.Validate(); err != nil {
		return queue.Item{}, err
	}
	b, err := json.Marshal(&r)
	if err != nil {
		return queue.Item{}, fmt.Errorf("relay: %w", err)
	}
	return queue.Item{Key: "receipt/" + r.TerminalID + "/" + r.Ticket, Kind: KindReceipt, Body: b}, nil
}

// AuditItem returns the queue item for one audit line (daemon/audit
// Appended.Seq and .Line); key "audit/<terminal>/<seq>".
func AuditItem(terminalID string, seq uint64, line []byte) (queue.Item, error) {
	a := AuditUpload{TerminalID: terminalID, Seq: seq, Line: string(line)}
	if err := a.Validate(); err != nil {
		return queue.Item{}, err
	}
	b, err := json.Marshal(&a)
	if err != nil {
		return queue.Item{}, fmt.Errorf("relay: %w", err)
	}
	return queue.Item{Key: "audit/" + terminalID + "/" + strconv.FormatUint(seq, 10), Kind: KindAudit, Body: b}, nil
}

// QueueSender returns the sender for daemon/queue's delivery loop: it
// delivers receipt and audit items with their idempotency keys. A refusal
// by the service, or an item it cannot decode, is permanent (dead-lettered,
// never dropped); everything else is retried by the queue.
func (c *Client) QueueSender() queue.Sender {
	return func(ctx context.Context, it queue.Item) error {
		var err error
		switch it.Kind {
		case KindReceipt:
			var r Receipt
			if err := json.Unmarshal(it.Body, &r); err != nil {
				return queue.Permanent(fmt.Errorf("relay: queued receipt: %w", err))
			}
			_, err = c.SendReceipt(ctx, it.Key, r)
		case KindAudit:
			var a AuditUpload
			if err := json.Unmarshal(it.Body, &a); err != nil {
				return queue.Permanent(fmt.Errorf("relay: queued audit record: %w", err))
			}
			_, err = c.UploadAudit(ctx, it.Key, a)
		default:
			return queue.Permanent(fmt.Errorf("relay: unknown queue item kind %q", it.Kind))
		}
		var fe *FieldError
		var re *RefusedError
		if errors.As(err, &re) || errors.As(err, &fe) {
			return queue.Permanent(err)
		}
		return err
	}
}

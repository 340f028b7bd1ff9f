// Package httpserve runs an http.Server for the life of a context: kazasud's
// kiosk API, its metrics endpoint and the reference issuance service share
// this lifecycle (their timeouts differ and stay with them).
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Run serves srv on ln until ctx is done, then shuts it down gracefully,
// waiting at most grace for requests in flight (event streams end when
// their request context does: give srv a BaseContext derived from ctx).
// Cancellation is not an error, nor is a shutdown that runs out of grace
// (the remaining connections are closed). A server that stops by itself
// returns its error.
func Run(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		srv.Close()
		err = nil
	}
	<-errc
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

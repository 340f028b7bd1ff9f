package kiosk_test

import (
	"context"
	"log/slog"
	"net"

	"kazasu/daemon/api"
	"kazasu/daemon/kiosk"
)

// Mounting the kiosk page in kazasud: the API handler without a token
// (like the unix socket's) behind the page, on a loopback address only.
func ExampleHandler() {
	var eng api.Engine // the daemon's engine
	ctx := context.Background()
	log := slog.Default()
	addr := "127.0.0.1:8080" // from the configuration

	if err := kiosk.CheckLoopback(addr); err != nil {
		log.Error("kiosk", "err", err) // a configuration error
		return
	}
	srv, err := api.New(api.Options{Engine: eng, Log: log})
	if err != nil {
		log.Error("kiosk", "err", err)
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("kiosk", "err", err)
		return
	}
	go api.Serve(ctx, ln, kiosk.Handler(srv.Handler(), kiosk.Options{}), log)
	// The kiosk browser opens http://127.0.0.1:8080/.
}

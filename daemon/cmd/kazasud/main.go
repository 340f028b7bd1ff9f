// Binary kazasud is the kazasu kiosk daemon: it watches the readers, runs
// JPKI user-authentication transactions for the kiosk UI, validates the
// certificates, relays the results to the municipal issuance service, and
// serves the local kiosk API on a unix socket.
//
// Usage:
//
//	kazasud [-config FILE] [-check]
//
// Without a configuration file kazasud runs on its embedded default: a
// simulated reader with a simulated My Number Card, the JPKI-TEST trust
// store (test mode), and the reference issuance service expected on
// https://127.0.0.1:8443 (kazasu issuance serve --tls-dir kazasu-data/tls).
//
// Exit codes: 0 after SIGTERM/SIGINT; 1 on a runtime failure (the
// supervisor restarts it); 125 for a configuration error, which a restart
// cannot cure (systemd: RestartPreventExitStatus=125; gokrazy: no restart).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"kazasu/daemon/api"
	"kazasu/daemon/config"
	"kazasu/daemon/kiosk"
	"kazasu/daemon/obs"
	"kazasu/daemon/terminal"
)

const (
	exitRuntime = 1
	exitConfig  = 125
)

func main() {
	configPath := flag.String("config", "/etc/kazasu/kazasud.toml", "configuration file (missing: the embedded default)")
	check := flag.Bool("check", false, "check the configuration and exit")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "kazasud: unexpected arguments:", strings.Join(flag.Args(), " "))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, *configPath, *check)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, configPath string, checkOnly bool) int {
	started := time.Now()
	cfg, usedDefault, err := config.LoadOrDefault(configPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kazasud: %v\n", err)
		return exitConfig
	}
	if checkOnly {
		fmt.Printf("kazasud: configuration ok (%d readers, terminal %s)\n", len(cfg.Readers), cfg.TerminalID)
		return 0
	}
	log := newLogger(cfg.LogLevel)
	if usedDefault {
		log.Warn("no configuration file; running on the embedded default (simulated reader, test mode)", "looked_for", configPath)
	}
	if err := serve(ctx, cfg, log, started); err != nil {
		if errors.Is(err, errConfig) {
			log.Error("configuration error", "err", err)
			return exitConfig
		}
		log.Error("kazasud failed", "err", err)
		return exitRuntime
	}
	log.Info("kazasud stopped")
	return 0
}

var errConfig = errors.New("configuration")

// newLogger is the JSON logger (attributes named like secrets redacted).
func newLogger(level string) *slog.Logger {
	log, _, err := obs.NewLogger(os.Stderr, level)
	if err != nil {
		log, _, _ = obs.NewLogger(os.Stderr, "info")
	}
	return log
}

// serve wires the terminal and its servers and runs until ctx ends.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, started time.Time) error {
	term, err := terminal.New(ctx, cfg, terminal.Options{Log: log})
	if err != nil {
		return err
	}
	defer term.Close()
	for _, r := range term.Trust.Roots() {
		log.Info("trusted root", "kind", r.Kind.String(), "generation", r.Generation, "test", r.Test, "sha256", r.Fingerprint(), "not_after", r.Cert.NotAfter)
	}
	srv, err := api.New(api.Options{Engine: term.Engine, Log: log})
	if err != nil {
		return err
	}
	sock := cfg.Path(cfg.API.Socket)
	ln, err := api.ListenUnix(sock, cfg.SocketFileMode())
	if err != nil {
		return fmt.Errorf("%w: api.socket: %w", errConfig, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	// Every server stops when ctx ends (api.Serve and obs.Serve shut down
	// gracefully and end open event streams); one that fails stops kazasud.
	serveHTTP := func(name string, serve func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serve(ctx); err != nil && ctx.Err() == nil {
				log.Error("server stopped", "server", name, "err", err)
				cancel()
			}
		}()
	}
	serveHTTP("api-unix", func(ctx context.Context) error { return api.Serve(ctx, ln, srv.Handler(), log) })
	if cfg.API.Listen != "" {
		token, err := api.ReadToken(cfg.Path(cfg.API.TokenFile))
		if err != nil {
			return fmt.Errorf("%w: api.token_file: %w", errConfig, err)
		}
		tsrv, err := api.New(api.Options{Engine: term.Engine, Log: log, Token: token})
		if err != nil {
			return err
		}
		tln, err := net.Listen("tcp", cfg.API.Listen)
		if err != nil {
			return fmt.Errorf("%w: api.listen: %w", errConfig, err)
		}
		serveHTTP("api-tcp", func(ctx context.Context) error { return api.Serve(ctx, tln, tsrv.TokenHandler(), log) })
	}
	if cfg.API.KioskListen != "" {
		if err := kiosk.CheckLoopback(cfg.API.KioskListen); err != nil {
			return fmt.Errorf("%w: api.kiosk_listen: %w", errConfig, err)
		}
		kln, err := net.Listen("tcp", cfg.API.KioskListen)
		if err != nil {
			return fmt.Errorf("%w: api.kiosk_listen: %w", errConfig, err)
		}
		page := kiosk.Handler(srv.Handler(), kiosk.Options{Services: []string{"juminhyo", "inkan", "kazei"}})
		serveHTTP("kiosk", func(ctx context.Context) error { return api.Serve(ctx, kln, page, log) })
		log.Info("kiosk page", "url", "http://"+kln.Addr().String()+"/")
	}
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("%w: metrics_listen: %w", errConfig, err)
		}
		serveHTTP("metrics", func(ctx context.Context) error {
			return obs.Serve(ctx, mln, obs.Handler(term.Metrics, term.Health), log)
		})
	}

	runErr := make(chan error, 1)
	go func() { runErr <- term.Run(ctx) }()

	// Ready: the API accepts requests and the engine runs; readers come up
	// on their own (and are reported offline until they do).
	log.Info("kazasud ready", "socket", sock, "terminal", cfg.TerminalID, "readers", len(cfg.Readers), "start_ms", time.Since(started).Milliseconds())
	sd.SdNotify(false, "READY=1\nSTATUS=serving "+sock)
	if iv, err := sd.SdWatchdogEnabled(false); err == nil && iv > 0 {
		go watchdog(ctx, iv/2, term)
	}
	err = <-runErr
	sd.SdNotify(false, "STOPPING=1")
	cancel()
	wg.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// watchdog pets systemd's watchdog while the engine's readers are healthy
// (at least one open); a wedged daemon stops petting and gets restarted.
func watchdog(ctx context.Context, every time.Duration, term *terminal.Terminal) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if term.Engine.Ready() == nil {
				sd.SdNotify(false, "WATCHDOG=1")
			}
		}
	}
}

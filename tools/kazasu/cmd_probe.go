package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"kazasu/daemon/config"
	"kazasu/drivers/jpki"
	"kazasu/drivers/nfc"
	"kazasu/drivers/reader"
	"kazasu/drivers/trace"
)

const readersUsage = `usage: kazasu readers [--config FILE] [URI...]

Opens each reader (the URIs given, else the readers of the kazasud config,
else the embedded default) and prints its driver, chip and firmware. Exit 1
if any reader cannot be opened.

URIs: pn532_uart:/dev/ttyAMA0[:baud], pn532_i2c:/dev/i2c-1,
pn532_spi:/dev/spidev0.0[:hz], libnfc:CONNSTRING, sim:CARDS[?via=...]`

const probeUsage = `usage: kazasu probe --reader URI [--mode auto|chip|host] [--timeout 10s] [--trace FILE.pcapng]

Polls the reader until a card or phone is tapped (or the timeout passes),
prints what the reader sees (technology, PUPI/UID, ATQB/ATS, frame sizes,
waiting time, bit rates, who runs ISO-DEP), and names the JPKI token type if
there is one. Nothing is verified or signed; no PIN is involved.

  --trace FILE  record host frames, RF frames and APDUs as pcapng; read it
                with: tshark -r FILE -V -d iso14443.subdissector,iso7816`

func init() {
	register(&command{Name: "readers", Summary: "list and open configured readers, print chip and firmware", Usage: readersUsage, Run: runReaders})
	register(&command{Name: "probe", Summary: "poll a reader and describe the tapped card or phone", Usage: probeUsage, Run: runProbe})
}

func runReaders(ctx context.Context, env *Env) error {
	fs := flag.NewFlagSet("readers", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "", "")
	if err := fs.Parse(env.Args); err != nil {
		return errUsage
	}
	uris := fs.Args()
	if len(uris) == 0 {
		cfg, _, err := config.LoadOrDefault(*cfgPath)
		if err != nil {
			return exitCode(2, err)
		}
		for _, r := range cfg.SortedReaders() {
			uris = append(uris, r.URI)
		}
	}
	failed := 0
	for _, u := range uris {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := reader.Open(octx, u, reader.Options{})
		cancel()
		if err != nil {
			failed++
			fmt.Fprintf(env.Stdout, "%-40s FAILED  %v\n", u, err)
			continue
		}
		info := r.Info()
		fmt.Fprintf(env.Stdout, "%-40s %-10s %s %s\n", u, info.Driver, info.Chip, info.Firmware)
		r.Close()
	}
	if failed > 0 {
		return exitCode(1, fmt.Errorf("%d of %d readers could not be opened", failed, len(uris)))
	}
	return nil
}

func parseMode(s string) (nfc.ISODepMode, error) {
	switch s {
	case "", "auto":
		return nfc.ISODepAuto, nil
	case "chip":
		return nfc.ISODepChip, nil
	case "host":
		return nfc.ISODepHost, nil
	}
	return 0, fmt.Errorf("mode %q: want auto, chip or host", s)
}

func runProbe(ctx context.Context, env *Env) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	uri := fs.String("reader", "", "")
	modeS := fs.String("mode", "auto", "")
	timeout := fs.Duration("timeout", 10*time.Second, "")
	tracePath := fs.String("trace", "", "")
	if err := fs.Parse(env.Args); err != nil || fs.NArg() != 0 || *uri == "" {
		return errUsage
	}
	mode, err := parseMode(*modeS)
	if err != nil {
		return exitCode(2, err)
	}
	var tw *trace.Writer
	if *tracePath != "" {
		f, err := os.Create(*tracePath)
		if err != nil {
			return exitCode(2, err)
		}
		defer f.Close()
		if tw, err = trace.NewWriter(f); err != nil {
			return err
		}
		defer tw.Close()
	}
	opts := reader.Options{}
	if tw != nil {
		opts.Tracer = tw
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	r, err := reader.Open(ctx, *uri, opts)
	if err != nil {
		return exitCode(1, err)
	}
	defer r.Close()
	info := r.Info()
	fmt.Fprintf(env.Stdout, "reader:    %s (%s %s %s)\n", *uri, info.Driver, info.Chip, info.Firmware)
	c, err := nfc.WaitForCard(ctx, r, nfc.PollOptions{Mode: mode}, 100*time.Millisecond)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return exitCode(3, fmt.Errorf("no card or phone tapped within %v", *timeout))
		}
		return exitCode(1, err)
	}
	defer c.Release(context.Background())
	describeTarget(env.Stdout, c.Target())
	s, err := jpki.Open(ctx, c, jpki.Options{})
	switch {
	case err == nil:
		fmt.Fprintf(env.Stdout, "JPKI:      %s (token %s)\n", s.Token(), s.Label())
		s.Close(ctx)
	case errors.Is(err, jpki.ErrUnsupportedToken):
		fmt.Fprintf(env.Stdout, "JPKI:      refused: %v\n", err)
	case errors.Is(err, jpki.ErrNotJPKI):
		fmt.Fprintf(env.Stdout, "JPKI:      none (not a JPKI token)\n")
	default:
		fmt.Fprintf(env.Stdout, "JPKI:      error: %v\n", err)
	}
	if tw != nil {
		fmt.Fprintf(env.Stdout, "trace:     %s (%d packets)\n", *tracePath, tw.Packets())
	}
	return nil
}

func describeTarget(w io.Writer, t nfc.Target) {
	up := func(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }
	switch t.Tech {
	case nfc.TechB:
		fmt.Fprintf(w, "target:    ISO/IEC 14443-4 Type B, PUPI %s\n", up(t.ID))
		fmt.Fprintf(w, "ATQB:      %s\n", up(t.ATQB))
		if len(t.AttribRes) > 0 {
			fmt.Fprintf(w, "ATTRIB:    answer %s\n", up(t.AttribRes))
		}
	case nfc.TechA:
		fmt.Fprintf(w, "target:    ISO/IEC 14443-4 Type A, UID %s (phones randomise it)\n", up(t.ID))
		fmt.Fprintf(w, "ATQA/SAK:  %s / %02X\n", up(t.ATQA), t.SAK)
		fmt.Fprintf(w, "ATS:       %s\n", up(t.ATS))
	}
	cid := "none"
	if t.CID >= 0 {
		cid = fmt.Sprint(t.CID)
	}
	fmt.Fprintf(w, "frames:    FSC %d, FSD %d, CID %s\n", t.FSC, t.FSD, cid)
	fmt.Fprintf(w, "timing:    FWT %v, SFGT %v\n", t.FWT.Round(time.Microsecond), t.SFGT)
	if t.BitRatePCD != 0 {
		fmt.Fprintf(w, "bit rate:  %d kbit/s PCD→PICC, %d kbit/s PICC→PCD\n", t.BitRatePCD, t.BitRatePICC)
	}
	fmt.Fprintf(w, "ISO-DEP:   %s-managed\n", t.Mode)
}

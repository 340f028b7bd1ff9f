package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"kazasu/firmware/bundle"
	"kazasu/firmware/slot"
	"kazasu/firmware/updateagent"
	"kazasu/tools/flash"
)

const pushUsage = `usage: kazasu push BUNDLE --host HOST[:PORT] [--timeout 10m] [--interval 2s] [--json]

Sends an update bundle (fwbuild's .update.kzb, signed with fwsign) to the
update agent of a board (port 8074 unless given) and follows it: the agent
verifies the signature, board, expiry and build itself (the laptop is not
trusted), writes and reads back the spare root slot, reboots into a trial,
runs its health checks and commits or rolls back. Prints one line per
change of state; --json prints the final report as JSON.

Exit status: 0 committed; 2 usage; 3 refused (by the agent: signature,
board, downgrade, busy...; or locally: not an update bundle); 4 transfer
or device error (unreachable, write or read-back failure on the board);
5 rolled back (the board runs the old version again); 6 not settled
within --timeout.`

// Exit codes of push.
const (
	pushRefused    = 3
	pushFailed     = 4
	pushRolledBack = 5
	pushTimeout    = 6
)

func init() {
	register(&command{Name: "push", Summary: "send an update bundle to a board and follow it to commit or rollback", Usage: pushUsage, Run: runPush})
}

// agentBase turns HOST, HOST:PORT or an http(s) URL into the agent's base URL.
func agentBase(host string) (string, error) {
	if strings.HasPrefix(host, "http://") || strings.HasPrefix(host, "https://") {
		u, err := url.Parse(host)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("bad agent URL %q", host)
		}
		return strings.TrimSuffix(u.String(), "/"), nil
	}
	if host == "" || strings.ContainsAny(host, "/ ") {
		return "", fmt.Errorf("bad host %q", host)
	}
	if _, port, err := net.SplitHostPort(host); err == nil {
		if _, err := strconv.Atoi(port); err != nil {
			return "", fmt.Errorf("bad port in %q", host)
		}
		return "http://" + host, nil
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(updateagent.DefaultPort)), nil
}

type pushReport struct {
	Host     string              `json:"host"`
	Bundle   string              `json:"bundle"`
	Version  string              `json:"version"`
	Build    uint64              `json:"build"`
	Outcome  string              `json:"outcome"` // committed, rolled-back, failed, refused, timeout, unreachable
	Reason   string              `json:"reason,omitempty"`
	Status   *updateagent.Status `json:"status,omitempty"`
	ExitCode int                 `json:"exit_code"`
	Elapsed  int64               `json:"elapsed_ms"`
}

// pushInterval can be shortened by tests.
var pushInterval = 2 * time.Second

func runPush(ctx context.Context, env *Env) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	host := fs.String("host", "", "")
	timeout := fs.Duration("timeout", 10*time.Minute, "")
	interval := fs.Duration("interval", pushInterval, "")
	asJSON := fs.Bool("json", false, "")
	args, err := parseAnyOrder(fs, env.Args)
	if err != nil || len(args) != 1 || *host == "" || *timeout <= 0 || *interval <= 0 {
		return errUsage
	}
	base, err := agentBase(*host)
	if err != nil {
		return exitCode(2, err)
	}
	f, err := os.Open(args[0])
	if err != nil {
		return exitCode(pushRefused, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return exitCode(pushRefused, err)
	}
	// The manifest, unverified, only to know what to wait for and to catch
	// an obvious mistake early; the board checks everything.
	raw, err := bundle.ManifestBytes(f)
	if err != nil {
		return exitCode(pushRefused, fmt.Errorf("%s: %w", args[0], err))
	}
	var m bundle.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return exitCode(pushRefused, fmt.Errorf("%s: manifest: %w", args[0], err))
	}
	if m.Kind != bundle.KindUpdate {
		return exitCode(pushRefused, fmt.Errorf("%s is a %s bundle; push takes update bundles (flash bundles go through kazasu flash)", args[0], m.Kind))
	}
	if st.Size() > updateagent.MaxBundle {
		return exitCode(pushRefused, fmt.Errorf("%s is %s, the agent takes at most %s", args[0], flash.HumanBytes(st.Size()), flash.HumanBytes(updateagent.MaxBundle)))
	}
	rep := &pushReport{Host: base, Bundle: args[0], Version: m.Version, Build: m.Build}
	start := time.Now()
	finish := func(code int, outcome, reason string) error {
		rep.ExitCode, rep.Outcome, rep.Reason = code, outcome, reason
		rep.Elapsed = time.Since(start).Milliseconds()
		if *asJSON {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			enc.Encode(rep)
		} else {
			line := fmt.Sprintf("%s: version %s build %d %s", base, m.Version, m.Build, outcome)
			if reason != "" {
				line += ": " + reason
			}
			fmt.Fprintln(env.Stdout, line)
		}
		if code == 0 {
			return nil
		}
		return exitCode(code, fmt.Errorf("%s", outcome))
	}
	logf := func(format string, a ...any) {
		if !*asJSON {
			fmt.Fprintf(env.Stderr, format+"\n", a...)
		}
	}

	client := &updateagent.Client{Base: base}
	logf("sending %s (version %s build %d, %s) to %s", args[0], m.Version, m.Build, flash.HumanBytes(st.Size()), base)
	cr := &flashCountingReader{r: f}
	pctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	t0 := time.Now()
	acc, err := client.Push(pctx, cr, st.Size())
	if err != nil {
		var ae *updateagent.APIError
		switch {
		case errors.As(err, &ae) && ae.Status < 500:
			return finish(pushRefused, "refused", fmt.Sprintf("%s (%s)", ae.ErrorBody.Error, ae.Kind))
		case errors.As(err, &ae):
			return finish(pushFailed, "failed", fmt.Sprintf("the board could not install it: %s", ae.ErrorBody.Error))
		case pctx.Err() != nil && ctx.Err() == nil:
			return finish(pushTimeout, "timeout", fmt.Sprintf("upload not answered within %s", *timeout))
		default:
			return finish(pushFailed, "unreachable", err.Error())
		}
	}
	logf("accepted (%s sent in %.1f s): slot written and read back on the board, phase %s, trial boot next",
		flash.HumanBytes(cr.n.Load()), time.Since(t0).Seconds(), acc.Phase)

	last := ""
	progress := func(s *updateagent.Status, err error) {
		var line string
		switch {
		case err != nil:
			line = "board not answering (rebooting?)"
		case s.Phase == "trying":
			line = fmt.Sprintf("trial of build %d running on slot %s: health checks%s", m.Build, s.RunningSlot, pushCheckSummary(s.Checks))
		default:
			line = fmt.Sprintf("phase %s, running build %d on slot %s", s.Phase, s.Build, s.RunningSlot)
		}
		if line != last {
			logf("%s", line)
			last = line
		}
	}
	fin, err := client.Wait(pctx, m.Build, *interval, progress)
	rep.Status = fin
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return finish(pushTimeout, "timeout", fmt.Sprintf("not settled within %s: %v", *timeout, err))
	}
	switch fin.Last.Outcome {
	case slot.Committed:
		return finish(0, "committed", fmt.Sprintf("running on slot %s", fin.RunningSlot))
	case slot.RolledBack:
		return finish(pushRolledBack, "rolled back", fmt.Sprintf("%s; the board runs version %s build %d again", fin.Last.Reason, fin.Version, fin.Build))
	default:
		return finish(pushFailed, string(fin.Last.Outcome), fin.Last.Reason)
	}
}

func pushCheckSummary(cs []updateagent.CheckResult) string {
	if len(cs) == 0 {
		return ""
	}
	var b bytes.Buffer
	for i, c := range cs {
		if i > 0 {
			b.WriteString(",")
		}
		st := "ok"
		if !c.OK {
			st = "failing"
		}
		fmt.Fprintf(&b, " %s %s", c.Name, st)
	}
	return ":" + b.String()
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"kazasu/firmware/updateagent"
)

const statusUsage = `usage: kazasu status HOST[:PORT] [--json] [--timeout 10s]

Asks a board's update agent (port 8074 unless given) what it runs: board,
version and build, running and committed slot, the agent's phase, the
last update and its outcome, and the health checks of the last trial boot
(reader, clock, data partition, services). --json prints the agent's
status as JSON.

Exit status: 0 answered and healthy; 1 answered but the last update did
not commit or a health check is failing; 2 usage; 4 unreachable.`

func init() {
	register(&command{Name: "status", Summary: "show a board's version, slot, last update and reader health", Usage: statusUsage, Run: runStatus})
}

func runStatus(ctx context.Context, env *Env) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "")
	timeout := fs.Duration("timeout", 10*time.Second, "")
	args, err := parseAnyOrder(fs, env.Args)
	if err != nil || len(args) != 1 || *timeout <= 0 {
		return errUsage
	}
	base, err := agentBase(args[0])
	if err != nil {
		return exitCode(2, err)
	}
	sctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	st, err := (&updateagent.Client{Base: base}).Status(sctx)
	if err != nil {
		return exitCode(pushFailed, fmt.Errorf("%s: %w", base, err))
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
	} else {
		printStatus(env.Stdout, base, st)
	}
	if problem := statusProblem(st); problem != "" {
		return exitCode(1, fmt.Errorf("%s: %s", base, problem))
	}
	return nil
}

// statusProblem names what a technician must look at, or "".
func statusProblem(st *updateagent.Status) string {
	var p []string
	if st.Last != nil && st.Last.Outcome != "committed" && st.Phase == "idle" {
		p = append(p, fmt.Sprintf("last update (build %d) %s", st.Last.Build, st.Last.Outcome))
	}
	if st.Phase == "halted" {
		p = append(p, "agent halted (unexpected boot)")
	}
	for _, c := range st.Checks {
		if !c.OK {
			p = append(p, "health check "+c.Name+" failing")
		}
	}
	return strings.Join(p, "; ")
}

func printStatus(w io.Writer, base string, st *updateagent.Status) {
	fmt.Fprintf(w, "agent      %s\n", base)
	fmt.Fprintf(w, "board      %s\n", st.Board)
	fmt.Fprintf(w, "version    %s (build %d)\n", st.Version, st.Build)
	fmt.Fprintf(w, "slot       running %s, committed %s (build %d)\n", st.RunningSlot, st.CommittedSlot, st.CommittedBuild)
	phase := st.Phase
	if st.Progress != "" {
		phase += ": " + st.Progress
	}
	fmt.Fprintf(w, "phase      %s\n", phase)
	if st.Trial != nil {
		fmt.Fprintf(w, "trial      build %d (%s) on slot %s, booted %v\n", st.Trial.Build, st.Trial.Version, st.Trial.Slot, st.Trial.Booted)
	}
	if st.Last == nil {
		fmt.Fprintf(w, "last       no update since flashing\n")
	} else {
		line := fmt.Sprintf("build %d (%s) %s", st.Last.Build, st.Last.Version, st.Last.Outcome)
		if st.Last.Reason != "" {
			line += ": " + st.Last.Reason
		}
		fmt.Fprintf(w, "last       %s\n", line)
	}
	if len(st.Checks) == 0 {
		fmt.Fprintf(w, "health     no checks run this boot (they run on a trial boot)\n")
	}
	for i, c := range st.Checks {
		label := ""
		if i == 0 {
			label = "health"
		}
		state := "ok"
		if !c.OK {
			state = "FAILING"
		}
		line := fmt.Sprintf("%-10s %s: %s", label, c.Name, state)
		if c.Detail != "" {
			line += " (" + c.Detail + ")"
		}
		fmt.Fprintln(w, line)
	}
}

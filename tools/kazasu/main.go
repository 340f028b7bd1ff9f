// Command kazasu is the technicians' and developers' tool for kazasu kiosk
// terminals: emulators, reader probes, certificate checks, flashing, updates,
// self-tests, the compatibility lab and the end-to-end demo.
//
// Usage:
//
//	kazasu <command> [flags] [args]
//	kazasu help [command]
//
// Each command lives in its own cmd_*.go file and registers itself with
// register() from an init function, so commands stay independent.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Env is what a command gets from main: arguments and standard streams, so
// that commands can be run from tests.
type Env struct {
	Args   []string // arguments after the command name
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// command is one subcommand.
type command struct {
	Name    string
	Summary string // one line for `kazasu help`
	Usage   string // full usage text, shown by `kazasu help NAME` and on flag errors
	Run     func(ctx context.Context, env *Env) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.Name]; dup {
		panic("kazasu: command registered twice: " + c.Name)
	}
	commands[c.Name] = c
}

// exitError carries a specific exit code out of a command.
type exitError struct {
	Code int
	Err  error
}

func (e *exitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}
func (e *exitError) Unwrap() error { return e.Err }

// exitCode wraps err so that main exits with code.
func exitCode(code int, err error) error { return &exitError{Code: code, Err: err} }

// errUsage marks a usage mistake (exit 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// runMain runs one command line and returns the process exit code.
func runMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				fmt.Fprintf(stdout, "%s\n", strings.TrimSpace(c.Usage))
				return 0
			}
			fmt.Fprintf(stderr, "kazasu: unknown command %q\n", args[1])
			return 2
		}
		printHelp(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "kazasu: unknown command %q (see kazasu help)\n", args[0])
		return 2
	}
	env := &Env{Args: args[1:], Stdin: stdin, Stdout: stdout, Stderr: stderr}
	err := c.Run(ctx, env)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.Err != nil && !errors.Is(ee.Err, errUsage) {
			fmt.Fprintf(stderr, "kazasu %s: %v\n", c.Name, ee.Err)
		}
		return ee.Code
	}
	if errors.Is(err, errUsage) {
		fmt.Fprintf(stderr, "%s\n", strings.TrimSpace(c.Usage))
		return 2
	}
	if errors.Is(err, context.Canceled) {
		return 0
	}
	fmt.Fprintf(stderr, "kazasu %s: %v\n", c.Name, err)
	return 1
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "usage: kazasu <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].Summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "kazasu help <command> shows a command's usage.")
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"kazasu/daemon/audit"
)

func init() {
	register(&command{
		Name:    "audit",
		Summary: "verify kazasud audit logs (hash chain, seals, head anchor)",
		Usage: `usage: kazasu audit verify [--head FILE] FILE...
       kazasu audit verify --dir DIR

Verifies audit log files given oldest first (rotated audit-*.log files, then
optionally the live audit.log): every record, the hash chain within and
across files, and the tail. A rotated file is anchored by its seal; the live
file by the head file (default: audit.head next to a file named audit.log).
Exit status 0 only when every file is intact, 1 when tampering or a cut is
found (the first bad record is reported with line and byte offset).
An unsealed last file without a head fails: a cut tail cannot be ruled out.
--dir verifies a whole log directory (kazasud's data_dir/audit): every
rotated file, then audit.log, anchored by audit.head.

  --head FILE   head file anchoring the last file's tail`,
		Run: runAudit,
	})
}

func runAudit(ctx context.Context, env *Env) error {
	if len(env.Args) == 0 || env.Args[0] != "verify" {
		return errUsage
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	headPath := fs.String("head", "", "")
	dir := fs.String("dir", "", "")
	if err := fs.Parse(env.Args[1:]); err != nil || (fs.NArg() == 0) == (*dir == "") {
		return errUsage
	}
	files := fs.Args()
	if *dir != "" {
		rot, err := audit.Rotated(*dir)
		if err != nil {
			return exitCode(1, err)
		}
		files = rot
		if live := filepath.Join(*dir, audit.LiveName); fileExists(live) {
			files = append(files, live)
		}
		if p := filepath.Join(*dir, audit.HeadName); *headPath == "" && fileExists(p) {
			*headPath = p
		}
		if len(files) == 0 {
			return exitCode(1, fmt.Errorf("no audit files in %s", *dir))
		}
	}
	last := files[len(files)-1]
	if *headPath == "" && filepath.Base(last) == audit.LiveName {
		if p := filepath.Join(filepath.Dir(last), audit.HeadName); fileExists(p) {
			*headPath = p
		}
	}
	var head *audit.Head
	if *headPath != "" {
		b, err := os.ReadFile(*headPath)
		if err != nil {
			return exitCode(1, err)
		}
		if head, err = audit.ParseHead(b); err != nil {
			return exitCode(1, err)
		}
	}
	res, err := audit.VerifyFiles(files, head)
	if err != nil {
		var ve *audit.VerifyError
		if errors.As(err, &ve) {
			fmt.Fprintf(env.Stdout, "FAIL %v\n", err)
			return exitCode(1, nil)
		}
		return exitCode(1, err)
	}
	anchor := "sealed"
	if !res.Sealed {
		anchor = "anchored by " + *headPath
	}
	fmt.Fprintf(env.Stdout, "OK %d file(s), terminal %s, last file seq %d..%d (%d records), %s\n",
		len(files), res.Terminal, res.FirstSeq, res.LastSeq, res.Records, anchor)
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

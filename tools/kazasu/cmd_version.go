package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

func init() {
	register(&command{
		Name:    "version",
		Summary: "print the kazasu version and build information",
		Usage:   "usage: kazasu version",
		Run: func(ctx context.Context, env *Env) error {
			if len(env.Args) != 0 {
				return errUsage
			}
			v := "(devel)"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				v = bi.Main.Version
			}
			fmt.Fprintf(env.Stdout, "kazasu %s %s %s/%s\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	})
}

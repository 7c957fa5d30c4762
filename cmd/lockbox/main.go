// Command lockbox is the lockbox secrets manager: the server and its CLI in one binary.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// run executes the command line; it returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(getenv, stdin, stdout, stderr, commandFor(args))
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		if ee, ok := err.(*exitError); ok {
			if ee.err != nil {
				fmt.Fprintln(stderr, "lockbox:", printableLines(ee.err.Error()))
			}
			return ee.code
		}
		fmt.Fprintln(stderr, "lockbox:", printableLines(err.Error()))
		return 1
	}
	return 0
}

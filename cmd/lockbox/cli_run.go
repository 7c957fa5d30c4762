package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// forwarded are the signals `lockbox run` passes on to its child.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// exitCode is a child's exit status as a shell reports it (128+n for signal n).
func exitCode(err error) int {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 1
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// environ is the parent's environment with the secrets laid over it.
func environ(keys []string, vals map[string]string) []string {
	env := os.Environ()
	for _, k := range keys {
		env = append(env, k+"="+vals[k])
	}
	return env
}

func (c *cli) newRunCmd() *cobra.Command {
	var o fetchOpts
	var watch bool
	var interval time.Duration
	var allowEnv []string
	cmd := &cobra.Command{
		Use:   "run [flags] -- COMMAND [ARGS...]",
		Short: "Run a command with the secrets in its environment",
		Long: `Run a command with the secrets of --projectId/--env/--path in its environment
(over the variables already set). Signals are passed on to the command, and
lockbox exits with the command's exit code (128+N when it dies of signal N).
With --watch, lockbox checks for changes every --watch-interval (a cheap
conditional request) and restarts the command with the new values.
Secrets named like variables that make programs run code or load libraries
(PATH, BASH_ENV, ENV, LD_*, DYLD_*, NODE_OPTIONS, PYTHONPATH, ...) are left
out with a warning unless named by --allow-env: anyone who may write a secret
in the folder, or in one it imports, could otherwise run code here.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if watch && interval < 100*time.Millisecond {
				return fmt.Errorf("--watch-interval must be at least 100ms (got %s)", interval)
			}
			ctx := cmd.Context()
			cl, err := c.client(ctx)
			if err != nil {
				return err
			}
			l, etag, err := fetch(ctx, cl, o, "")
			if err != nil {
				return err
			}
			sigs := make(chan os.Signal, 8)
			signal.Notify(sigs, forwarded...)
			defer signal.Stop(sigs)
			var tick <-chan time.Time
			if watch {
				t := time.NewTicker(interval)
				defer t.Stop()
				tick = t.C
			}
			for {
				keys, vals := flatten(l)
				keys = envSafe(c.stderr, keys, vals, false, allowEnv)
				child := exec.Command(args[0], args[1:]...)
				child.Env = environ(keys, vals)
				child.Stdin, child.Stdout, child.Stderr = c.stdin, c.stdout, c.stderr
				if err := child.Start(); err != nil {
					return &exitError{127, err}
				}
				done := make(chan error, 1)
				go func() { done <- child.Wait() }()
				restart := false
			wait:
				for {
					select {
					case err := <-done:
						if err == nil {
							return nil
						}
						return &exitError{exitCode(err), nil}
					case s := <-sigs:
						child.Process.Signal(s)
					case <-tick:
						next, tag, err := fetch(context.WithoutCancel(ctx), cl, o, etag)
						if err != nil {
							fmt.Fprintf(c.stderr, "lockbox: watching for changes: %s\n", printable(err.Error()))
							continue
						}
						if next == nil { // 304: unchanged
							continue
						}
						l, etag, restart = next, tag, true
						fmt.Fprintln(c.stderr, "lockbox: secrets changed; restarting the command")
						child.Process.Signal(syscall.SIGTERM)
						select {
						case <-done:
						case <-time.After(10 * time.Second):
							child.Process.Kill()
							<-done
						}
						break wait
					}
				}
				if !restart {
					return nil
				}
			}
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVar(&watch, "watch", false, "restart the command when the secrets change")
	cmd.Flags().DurationVar(&interval, "watch-interval", 5*time.Second, "how often --watch checks")
	cmd.Flags().StringArrayVar(&allowEnv, "allow-env", nil, "set this secret even if its name makes programs run code (PATH, LD_PRELOAD, ...); repeatable")
	return cmd
}

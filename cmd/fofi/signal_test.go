//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain runs the demo's main instead of the tests when
// FOFI_DEMO_AS_MAIN is set, so that TestSignals can start the demo as a
// process of its own and signal it.
func TestMain(m *testing.M) {
	if os.Getenv("FOFI_DEMO_AS_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// TestSignals sends SIGINT and SIGTERM to the demo while it runs and checks
// the exit status: 128 plus the signal's number, as a shell reports it.
func TestSignals(t *testing.T) {
	for _, tc := range []struct {
		sig     syscall.Signal
		code    int
		message string
	}{
		{syscall.SIGINT, 130, "interrupted after "},
		{syscall.SIGTERM, 143, "terminated after "},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a demo that ignored the signal
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-stats", "-jobs", "3", "-work", "1h")
			cmd.Env = append(os.Environ(), "FOFI_DEMO_AS_MAIN=1")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Signal once all three producers are running, then read the
			// rest of the output to the end.
			sc := bufio.NewScanner(stdout)
			var out []string
			for sc.Scan() {
				out = append(out, sc.Text())
				if sc.Text() == "producer processing 3" {
					if err := cmd.Process.Signal(tc.sig); err != nil {
						t.Fatal(err)
					}
				}
			}
			err = cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tc.code || !strings.HasPrefix(stderr.String(), tc.message) {
				t.Fatalf("the demo, sent %v, exited with %v, stderr %q; want status %d, %q...", tc.sig, err, stderr.String(), tc.code, tc.message)
			}
			if last := out[len(out)-1]; !strings.HasPrefix(last, "stats: 3 work calls (0 failed, 3 cancelled by the stop)") {
				t.Errorf("the demo's last line = %q, want the stats of the interrupted run", last)
			}
		})
	}
}

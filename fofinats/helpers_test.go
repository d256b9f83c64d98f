package fofinats_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fofi-go/fofi/fofinats"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startServer starts an embedded JetStream server on a random loopback
// port, storing in a temporary directory, and shuts it down when the test
// ends.
func startServer(t testing.TB) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready in 10s")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// connect opens a connection to s, closed when the test ends.
func connect(t testing.TB, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// newClient makes a client closed when the test ends.
func newClient(t testing.TB, js jetstream.JetStream, opts ...fofinats.Option) *fofinats.Client {
	t.Helper()
	c, err := fofinats.NewClient(context.Background(), js, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func provision(t testing.TB, js jetstream.JetStream, name string, opts ...fofinats.Option) {
	t.Helper()
	if err := fofinats.Provision(context.Background(), js, name, opts...); err != nil {
		t.Fatal(err)
	}
}

// workerProc is a worker process running the test handler.
type workerProc struct {
	cmd   *exec.Cmd
	stdin interface{ Close() error }
	done  chan struct{} // closed when the process has exited
	err   error         // its exit status, once done is closed
}

// startWorkers starts n worker processes serving the handler name on s with
// the given slots each. They stop when the test ends.
func startWorkers(t testing.TB, s *server.Server, name string, n, slots int) []*workerProc {
	t.Helper()
	var ws []*workerProc
	for range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(),
			workerEnv+"="+s.ClientURL(), handlerEnv+"="+name, fmt.Sprintf("%s=%d", slotsEnv, slots))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w := &workerProc{cmd: cmd, stdin: stdin, done: make(chan struct{})}
		go func() {
			w.err = cmd.Wait()
			close(w.done)
		}()
		ws = append(ws, w)
	}
	t.Cleanup(func() {
		for _, w := range ws {
			w.stdin.Close()
		}
		for _, w := range ws {
			select {
			case <-w.done:
			case <-time.After(5 * time.Second):
				t.Errorf("worker %d did not stop within 5s of its stdin closing", w.cmd.Process.Pid)
				w.cmd.Process.Kill()
				<-w.done
			}
		}
	})
	return ws
}

// events collects what the test workers report on eventsSubject.
type events struct {
	mu   sync.Mutex
	cond *sync.Cond
	all  []string
}

func watchEvents(t testing.TB, nc *nats.Conn) *events {
	t.Helper()
	e := &events{}
	e.cond = sync.NewCond(&e.mu)
	sub, err := nc.Subscribe(eventsSubject, func(m *nats.Msg) {
		e.mu.Lock()
		e.all = append(e.all, string(m.Data))
		e.mu.Unlock()
		e.cond.Broadcast()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return e
}

// waitFor waits until cond holds for the events seen so far, or fails the
// test after timeout.
func (e *events) waitFor(t testing.TB, timeout time.Duration, what string, cond func([]string) bool) []string {
	t.Helper()
	// Broadcast under the lock, so that it cannot fall between the
	// waiter's check of the time and its Wait.
	deadline := time.AfterFunc(timeout, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.cond.Broadcast()
	})
	defer deadline.Stop()
	end := time.Now().Add(timeout)
	e.mu.Lock()
	defer e.mu.Unlock()
	for !cond(e.all) {
		if time.Now().After(end) {
			t.Fatalf("waited %v for %s; events: %s", timeout, what, strings.Join(e.all, ", "))
		}
		e.cond.Wait()
	}
	return append([]string(nil), e.all...)
}

func count(evs []string, prefix string) int {
	n := 0
	for _, e := range evs {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

package fofinats_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fofi-go/fofi"
	"github.com/fofi-go/fofi/fofinats"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func jobs(n int, f func(i int) job) iter.Seq[job] {
	return func(yield func(job) bool) {
		for i := range n {
			j := job{N: i}
			if f != nil {
				j = f(i)
				j.N = i
			}
			if !yield(j) {
				return
			}
		}
	}
}

// queued returns the number of messages in the handler's stream, and the
// consumer's count of inputs not yet delivered and delivered but not yet
// acknowledged.
func queued(t *testing.T, js jetstream.JetStream, name string) (msgs uint64, pending uint64, ackPending int) {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, "FOFI_IN_"+name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.Consumer(ctx, "workers")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs, ci.NumPending, ci.NumAckPending
}

func TestExactlyOnce(t *testing.T) {
	const n = 10_000
	s := startServer(t)
	_, js := connect(t, s)
	provision(t, js, "exact")
	startWorkers(t, s, "exact", 3, 32)
	c := newClient(t, js)
	seen := make([]int, n)
	workers := map[int]int{}
	err := fofinats.Run(context.Background(), c, "exact", jobs(n, nil), func(r result) error {
		seen[r.N/2]++
		workers[r.Worker]++
		return nil
	}, fofi.WithConcurrency(256))
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	for i, k := range seen {
		if k != 1 {
			t.Fatalf("result of input %d consumed %d times, want 1", i, k)
		}
	}
	if len(workers) != 3 {
		t.Errorf("results came from %d workers (%v), want 3", len(workers), workers)
	}
	if msgs, pending, _ := queued(t, js, "exact"); msgs != 0 || pending != 0 {
		t.Errorf("after Run: %d messages in the stream, %d pending, want 0", msgs, pending)
	}
}

func TestOrdered(t *testing.T) {
	const n = 200
	s := startServer(t)
	_, js := connect(t, s)
	provision(t, js, "ordered")
	startWorkers(t, s, "ordered", 3, 8)
	c := newClient(t, js)
	var got []int
	workers := map[int]bool{}
	err := fofinats.Run(context.Background(), c, "ordered",
		jobs(n, func(i int) job { return job{Sleep: time.Duration(i*7%5) * time.Millisecond} }),
		func(r result) error {
			got = append(got, r.N/2)
			workers[r.Worker] = true
			return nil
		}, fofi.WithConcurrency(32), fofi.WithOrdered())
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	want := slices.Collect(func(yield func(int) bool) {
		for i := range n {
			yield(i)
		}
	})
	if !slices.Equal(got, want) {
		t.Fatalf("Run with WithOrdered consumed %v, want 0..%d in order", got, n-1)
	}
	if len(workers) < 2 {
		t.Errorf("results came from %d workers, want several", len(workers))
	}
}

// TestInputOrder: a run's inputs reach the stream in input order, however
// fofi orders the starts of its calls, so that a worker with one slot runs
// them in input order, as a loop would. Its calls all start at once, on 200
// goroutines, whose publications used to race.
func TestInputOrder(t *testing.T) {
	const n = 200
	s := startServer(t)
	nc, js := connect(t, s)
	ev := watchEvents(t, nc)
	provision(t, js, "order")
	startWorkers(t, s, "order", 1, 1)
	c := newClient(t, js)
	err := fofinats.Run(context.Background(), c, "order",
		jobs(n, func(int) job { return job{Report: true} }),
		func(result) error { return nil }, fofi.WithConcurrency(n))
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	evs := ev.waitFor(t, 10*time.Second, "every call to start", func(e []string) bool { return count(e, "start") == n })
	var got []int
	for _, e := range evs {
		var pid, i int
		if _, err := fmt.Sscanf(e, "start %d %d", &pid, &i); err == nil {
			got = append(got, i)
		}
	}
	for i, g := range got {
		if g != i {
			t.Fatalf("one worker slot ran the inputs in the order %v, want 0..%d in order", got, n-1)
		}
	}
}

// TestFailFast: the first error cancels the calls running on the workers
// and purges the run's queued inputs.
func TestFailFast(t *testing.T) {
	s := startServer(t)
	nc, js := connect(t, s)
	ev := watchEvents(t, nc)
	provision(t, js, "failfast")
	startWorkers(t, s, "failfast", 2, 2)
	c := newClient(t, js)
	inputs := func(yield func(job) bool) {
		for i := range 3 {
			if !yield(job{N: i, Block: true}) {
				return
			}
		}
		// The failure comes once the three blocking calls run.
		ev.waitFor(t, 10*time.Second, "3 blocking calls to start", func(e []string) bool { return count(e, "start") == 3 })
		if !yield(job{N: 3, Fail: true}) {
			return
		}
		for i := 4; i < 100; i++ {
			if !yield(job{N: i, Sleep: 10 * time.Second, Report: true}) {
				return
			}
		}
	}
	err := fofinats.Run(context.Background(), c, "failfast", inputs, func(result) error { return nil },
		fofi.WithConcurrency(50))
	var te *fofi.TaskError
	var re *fofinats.RemoteError
	if !errors.As(err, &te) || te.Index != 3 || !errors.As(err, &re) || re.Msg != "job 3 fails" || re.Name != "failfast" {
		t.Fatalf("Run = %v, want a *fofi.TaskError for input 3 wrapping a *RemoteError", err)
	}
	if !strings.HasPrefix(err.Error(), "fofi: input 3: fofinats: failfast on ") {
		t.Errorf("Run error reads %q", err)
	}
	if msgs, pending, _ := queued(t, js, "failfast"); msgs != 0 || pending != 0 {
		t.Errorf("after Run: %d messages in the stream, %d pending, want 0: the run's inputs purged", msgs, pending)
	}
	// The blocking calls see their context end; every call that started
	// ends (a queued input taken before the purge is cancelled too).
	evs := ev.waitFor(t, 10*time.Second, "the running calls to be cancelled", func(e []string) bool {
		return count(e, "cancelled") == 3 && count(e, "end") == count(e, "start")
	})
	if started := count(evs, "start"); started > 5 {
		t.Errorf("%d calls started, want at most 3 blocking + 1 failing + 1 taken before the purge: %v", started, evs)
	}
}

// TestKillWorker: a worker killed (SIGKILL) in the middle of its calls
// loses nothing: its inputs are redelivered after AckWait and every result
// is consumed exactly once.
func TestKillWorker(t *testing.T) {
	const n = 24
	s := startServer(t)
	nc, js := connect(t, s)
	ev := watchEvents(t, nc)
	provision(t, js, "kill", fofinats.WithAckWait(time.Second))
	ws := startWorkers(t, s, "kill", 3, 2)
	c := newClient(t, js)
	killed := make(chan int, 1)
	go func() {
		evs := ev.waitFor(t, 10*time.Second, "a call to start", func(e []string) bool { return count(e, "start") > 0 })
		var pid int
		fmt.Sscanf(evs[0], "start %d", &pid)
		for _, w := range ws {
			if w.cmd.Process.Pid == pid {
				w.cmd.Process.Kill()
				<-w.done
			}
		}
		killed <- pid
	}()
	seen := make([]int, n)
	byWorker := make([]int, n)
	err := fofinats.Run(context.Background(), c, "kill",
		jobs(n, func(int) job { return job{Sleep: 200 * time.Millisecond, Report: true} }),
		func(r result) error {
			seen[r.N/2]++
			byWorker[r.N/2] = r.Worker
			return nil
		}, fofi.WithConcurrency(n))
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	pid := <-killed
	for i, k := range seen {
		if k != 1 {
			t.Fatalf("result of input %d consumed %d times, want 1", i, k)
		}
	}
	// The killed worker's first call started and was redelivered.
	evs := ev.waitFor(t, time.Second, "events", func([]string) bool { return true })
	var first int
	fmt.Sscanf(evs[0], "start %d %d", &pid, &first)
	if byWorker[first] == pid {
		t.Errorf("input %d answered by the worker killed in the middle of it", first)
	}
	if starts := count(evs, fmt.Sprintf("start %d ", pid)); starts == 0 {
		t.Errorf("no call started on the killed worker %d", pid)
	}
}

// TestHeartbeat: a call two and a half times as long as AckWait runs once.
func TestHeartbeat(t *testing.T) {
	s := startServer(t)
	nc, js := connect(t, s)
	ev := watchEvents(t, nc)
	provision(t, js, "beat", fofinats.WithAckWait(time.Second))
	startWorkers(t, s, "beat", 2, 1)
	c := newClient(t, js)
	err := fofinats.Run(context.Background(), c, "beat",
		jobs(2, func(int) job { return job{Sleep: 2500 * time.Millisecond, Report: true} }),
		func(result) error { return nil })
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	evs := ev.waitFor(t, 5*time.Second, "2 calls to end", func(e []string) bool { return count(e, "end") == 2 })
	if starts := count(evs, "start"); starts != 2 {
		t.Errorf("%d calls started for 2 inputs longer than AckWait, want 2 (no redelivery): %v", starts, evs)
	}
}

// TestPoisonInput: an input that kills every worker that takes it ends the
// run with ErrMaxDeliveries after MaxDeliver deliveries, naming the input.
func TestPoisonInput(t *testing.T) {
	s := startServer(t)
	_, js := connect(t, s)
	provision(t, js, "poison", fofinats.WithAckWait(time.Second), fofinats.WithMaxDeliver(2))
	ws := startWorkers(t, s, "poison", 3, 1)
	c := newClient(t, js)
	start := time.Now()
	err := fofinats.Run(context.Background(), c, "poison",
		jobs(10, func(i int) job { return job{Exit: i == 4} }),
		func(result) error { return nil }, fofi.WithConcurrency(10))
	var te *fofi.TaskError
	if !errors.Is(err, fofinats.ErrMaxDeliveries) || !errors.As(err, &te) || te.Index != 4 {
		t.Fatalf("Run = %v, want ErrMaxDeliveries for input 4", err)
	}
	t.Logf("Run returned after %v: %v", time.Since(start), err)
	dead := 0
	for _, w := range ws {
		select {
		case <-w.done:
			dead++
		default:
		}
	}
	if dead != 2 {
		t.Errorf("%d workers died, want 2 (MaxDeliver)", dead)
	}
	if msgs, pending, _ := queued(t, js, "poison"); msgs != 0 || pending != 0 {
		t.Errorf("after Run: %d messages in the stream, %d pending, want 0", msgs, pending)
	}
}

// TestWorkerPanic: a panic on a worker comes back as a *RemotePanicError
// and the worker goes on serving.
func TestWorkerPanic(t *testing.T) {
	s := startServer(t)
	_, js := connect(t, s)
	provision(t, js, "panic")
	ws := startWorkers(t, s, "panic", 1, 2)
	c := newClient(t, js)
	err := fofinats.Run(context.Background(), c, "panic",
		jobs(10, func(i int) job { return job{Panic: i == 5} }),
		func(result) error { return nil })
	var pe *fofinats.RemotePanicError
	var te *fofi.TaskError
	if !errors.As(err, &pe) || !errors.As(err, &te) || te.Index != 5 {
		t.Fatalf("Run = %v, want a *RemotePanicError for input 5", err)
	}
	if pe.Value != "job 5 panics" || !strings.Contains(string(pe.Stack), "fofinats_test.work") || pe.Worker == "" {
		t.Errorf("RemotePanicError = {Value %q, Worker %q, Stack %d bytes}, want the panic value and the worker's stack",
			pe.Value, pe.Worker, len(pe.Stack))
	}
	sum := 0
	err = fofinats.Run(context.Background(), c, "panic", jobs(10, nil), func(r result) error {
		sum += r.N
		return nil
	})
	if err != nil || sum != 90 {
		t.Fatalf("second Run = %v (sum %d), want nil (90): the worker goes on serving", err, sum)
	}
	select {
	case <-ws[0].done:
		t.Errorf("the worker exited: %v", ws[0].err)
	default:
	}
}

// TestGlobalLimit: WithGlobalLimit bounds the calls in flight across every
// worker, measured by the workers' own start and end events.
func TestGlobalLimit(t *testing.T) {
	const limit, n = 3, 30
	s := startServer(t)
	nc, js := connect(t, s)
	ev := watchEvents(t, nc)
	provision(t, js, "limit", fofinats.WithGlobalLimit(limit))
	startWorkers(t, s, "limit", 3, 4) // 12 slots
	c := newClient(t, js)
	err := fofinats.Run(context.Background(), c, "limit",
		jobs(n, func(int) job { return job{Sleep: 20 * time.Millisecond, Report: true} }),
		func(result) error { return nil }, fofi.WithConcurrency(n))
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	// Each worker publishes "end" before its input is acknowledged, and
	// the server delivers the next input only after that: the events
	// arrive in an order in which the gauge never undercounts.
	evs := ev.waitFor(t, 5*time.Second, "every call to end", func(e []string) bool { return count(e, "end") == n })
	inFlight, most := 0, 0
	for _, e := range evs {
		switch {
		case strings.HasPrefix(e, "start"):
			inFlight++
			most = max(most, inFlight)
		case strings.HasPrefix(e, "end"):
			inFlight--
		}
	}
	if most != limit {
		t.Errorf("at most %d calls in flight across 3 workers of 4 slots, want %d (WithGlobalLimit)", most, limit)
	}
}

func TestNotProvisioned(t *testing.T) {
	s := startServer(t)
	_, js := connect(t, s)
	c := newClient(t, js)
	ctx := context.Background()
	err := fofinats.Run(ctx, c, "nope", jobs(3, nil), func(result) error { return nil })
	if !errors.Is(err, fofinats.ErrNotProvisioned) || !strings.Contains(err.Error(), `"nope"`) || !strings.HasPrefix(err.Error(), "fofinats: ") {
		t.Errorf("Run on an unknown handler = %v, want ErrNotProvisioned naming it", err)
	}
	_, err = fofinats.Remote[job, result](c, "nope")(ctx, job{})
	if !errors.Is(err, fofinats.ErrNotProvisioned) {
		t.Errorf("Remote call to an unknown handler = %v, want ErrNotProvisioned", err)
	}
	err = fofinats.Serve(ctx, js, "nope", func(context.Context, int) (int, error) { return 0, nil })
	if !errors.Is(err, fofinats.ErrNotProvisioned) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Serve of an unknown handler = %v, want ErrNotProvisioned naming it", err)
	}
}

func TestBadOptions(t *testing.T) {
	s := startServer(t)
	_, js := connect(t, s)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opt  fofinats.Option
		want string
	}{
		{"concurrency", fofinats.WithWorkerConcurrency(0), "fofinats: WithWorkerConcurrency(0): "},
		{"ackwait", fofinats.WithAckWait(time.Millisecond), "fofinats: WithAckWait(1ms): "},
		{"maxdeliver", fofinats.WithMaxDeliver(0), "fofinats: WithMaxDeliver(0): "},
		{"globallimit", fofinats.WithGlobalLimit(0), "fofinats: WithGlobalLimit(0): "},
		{"replicas", fofinats.WithReplicas(7), "fofinats: WithReplicas(7): "},
		{"codec", fofinats.WithCodec(nil), "fofinats: WithCodec(nil): "},
		{"timeout", fofinats.WithServerTimeout(0), "fofinats: WithServerTimeout(0s): "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for fn, err := range map[string]error{
				"Provision": fofinats.Provision(ctx, js, "x", tc.opt),
				"Serve":     fofinats.Serve(ctx, js, "x", func(context.Context, int) (int, error) { return 0, nil }, tc.opt),
				"NewClient": func() error { _, err := fofinats.NewClient(ctx, js, tc.opt); return err }(),
			} {
				if !errors.Is(err, fofi.ErrInvalidOption) || !strings.HasPrefix(fmt.Sprint(err), tc.want) {
					t.Errorf("%s = %v, want %q... wrapping fofi.ErrInvalidOption", fn, err, tc.want)
				}
			}
		})
	}
	for _, name := range []string{"", "a.b", "a b", "a*", strings.Repeat("x", 65)} {
		err := fofinats.Provision(ctx, js, name)
		if !errors.Is(err, fofi.ErrInvalidOption) || !strings.HasPrefix(fmt.Sprint(err), "fofinats: handler name ") {
			t.Errorf("Provision(%q) = %v, want an invalid handler name", name, err)
		}
	}
}

// TestCodecErrors: an input the codec cannot encode fails on the client; an
// input the worker cannot decode fails on the worker, as a *RemoteError.
func TestCodecErrors(t *testing.T) {
	s := startServer(t)
	_, js := connect(t, s)
	provision(t, js, "codec")
	startWorkers(t, s, "codec", 1, 1)
	c := newClient(t, js)
	ctx := context.Background()
	_, err := fofinats.Remote[float64, result](c, "codec")(ctx, math.Inf(1))
	if err == nil || !strings.HasPrefix(err.Error(), `fofinats: handler "codec": encode input float64: `) {
		t.Errorf("Remote(+Inf) = %v, want an encoding error", err)
	}
	_, err = fofinats.Remote[string, result](c, "codec")(ctx, "not a job")
	var re *fofinats.RemoteError
	if !errors.As(err, &re) || !strings.HasPrefix(re.Msg, "decode input as fofinats_test.job: ") {
		t.Errorf("Remote(string) on a handler of job = %v, want a *RemoteError for decoding", err)
	}
	_, err = fofinats.Remote[job, string](c, "codec")(ctx, job{N: 1})
	if err == nil || !strings.HasPrefix(err.Error(), `fofinats: handler "codec": decode result as string: `) {
		t.Errorf("Remote[job, string] = %v, want a decoding error", err)
	}
}

// TestServerDown: with the server gone, NewClient fails and a run fails
// with ErrUnavailable, each within about WithServerTimeout.
func TestServerDown(t *testing.T) {
	const timeout = 500 * time.Millisecond
	s := startServer(t)
	_, js := connect(t, s)
	provision(t, js, "down")
	c := newClient(t, js, fofinats.WithServerTimeout(timeout))
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		// No worker: the calls wait for results until the server goes.
		done <- fofinats.Run(ctx, c, "down", jobs(10, nil), func(result) error { return nil })
	}()
	for {
		if msgs, _, _ := queued(t, js, "down"); msgs == 10 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	s.Shutdown()
	select {
	case err := <-done:
		if !errors.Is(err, fofinats.ErrUnavailable) {
			t.Errorf("Run with the server down = %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 6*timeout {
			t.Errorf("Run took %v to fail, want about %v", d, timeout)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run with the server down still running after 10s")
	}
	start = time.Now()
	_, err := fofinats.NewClient(ctx, js, fofinats.WithServerTimeout(timeout))
	if err == nil || !strings.HasPrefix(err.Error(), "fofinats: ") {
		t.Errorf("NewClient with the server down = %v, want an error", err)
	}
	if d := time.Since(start); d > 6*timeout {
		t.Errorf("NewClient took %v to fail, want about %v", d, timeout)
	}
}

// TestServeStops: when its context ends, Serve returns within a second,
// handing back what it has not finished; another worker finishes it.
func TestServeStops(t *testing.T) {
	s := startServer(t)
	nc, js := connect(t, s)
	ev := watchEvents(t, nc)
	provision(t, js, "stop")
	_, wjs := connect(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- fofinats.Serve(ctx, wjs, "stop", work(nc), fofinats.WithWorkerConcurrency(2))
	}()
	c := newClient(t, js)
	done := make(chan error, 1)
	var got []int
	go func() {
		done <- fofinats.Run(context.Background(), c, "stop",
			jobs(4, func(int) job { return job{Sleep: 300 * time.Millisecond, Report: true} }),
			func(r result) error { got = append(got, r.N/2); return nil })
	}()
	ev.waitFor(t, 5*time.Second, "2 calls to start", func(e []string) bool { return count(e, "start") == 2 })
	start := time.Now()
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after its context ended", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Serve returned %v after its context ended, want within 1s", d)
	}
	serveInProcess(t, s, "stop", 1, work(nc), fofinats.WithWorkerConcurrency(4))
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	slices.Sort(got)
	if !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Errorf("consumed %v, want each of 0..3 once", got)
	}
}

// TestServerRestart: a server restarted while calls wait makes them
// finish or fail, never hang, even when the restart lost the client's
// results consumer.
func TestServerRestart(t *testing.T) {
	t.Run("kept", func(t *testing.T) { testServerRestart(t, false) })
	t.Run("lost", func(t *testing.T) { testServerRestart(t, true) })
}

func testServerRestart(t *testing.T, loseResults bool) {
	s, opts := startFileServer(t)
	nc, err := nats.Connect(s.ClientURL(), nats.ReconnectWait(100*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	provision(t, js, "restart")
	c := newClient(t, js)
	done := make(chan error, 1)
	go func() {
		done <- fofinats.Run(context.Background(), c, "restart", jobs(5, nil), func(result) error { return nil })
	}()
	for {
		if msgs, _, _ := queued(t, js, "restart"); msgs == 5 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if loseResults {
		out, err := js.Stream(context.Background(), "FOFI_OUT")
		if err != nil {
			t.Fatal(err)
		}
		names := out.ConsumerNames(context.Background())
		for name := range names.Name() {
			if err := js.DeleteConsumer(context.Background(), "FOFI_OUT", name); err != nil {
				t.Fatal(err)
			}
		}
	}
	s = restartServer(t, s, opts)
	startWorkers(t, s, "restart", 1, 4)
	select {
	case err := <-done:
		if loseResults && !errors.Is(err, fofinats.ErrUnavailable) || err != nil && !errors.Is(err, fofinats.ErrUnavailable) {
			t.Errorf("Run across a server restart = %v, want nil or ErrUnavailable", err)
		}
		t.Logf("Run across a server restart: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("Run still waiting 15s after the server restarted")
	}
}

// TestResultsOnFile: a results stream kept on file (made by an earlier
// version; the current one is in memory) is used as it is, since storage
// cannot change in place.
func TestResultsOnFile(t *testing.T) {
	s := startServer(t)
	_, js := connect(t, s)
	_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "FOFI_OUT", Subjects: []string{"fofi.out.>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
	})
	if err != nil {
		t.Fatal(err)
	}
	provision(t, js, "onfile")
	startWorkers(t, s, "onfile", 1, 2)
	c := newClient(t, js)
	sum := 0
	err = fofinats.Run(context.Background(), c, "onfile", jobs(10, nil), func(r result) error {
		sum += r.N
		return nil
	})
	if err != nil || sum != 90 {
		t.Fatalf("Run = %v with results summing to %d, want nil and 90", err, sum)
	}
	out, err := js.Stream(context.Background(), "FOFI_OUT")
	if err != nil {
		t.Fatal(err)
	}
	if st := out.CachedInfo().Config.Storage; st != jetstream.FileStorage {
		t.Errorf("FOFI_OUT storage = %v, want file storage kept", st)
	}
}

// panicCodec is JSON, except that encoding the job with N == 3 panics.
type panicCodec struct{}

func (panicCodec) Marshal(v any) ([]byte, error) {
	if j, ok := v.(job); ok && j.N == 3 {
		panic("cannot encode job 3")
	}
	return fofinats.JSON.Marshal(v)
}
func (panicCodec) Unmarshal(data []byte, v any) error { return fofinats.JSON.Unmarshal(data, v) }

// TestCodecPanic: a codec that panics on an input makes Run panic on its
// caller, as fofi replays a panic of work, instead of hanging the calls
// that wait for that input or for those published after it.
func TestCodecPanic(t *testing.T) {
	s := startServer(t)
	_, js := connect(t, s)
	provision(t, js, "codecpanic")
	c := newClient(t, js, fofinats.WithCodec(panicCodec{}))
	defer func() {
		if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "cannot encode job 3") {
			t.Fatalf("Run panicked with %v, want the codec's panic", v)
		}
	}()
	fofinats.Run(context.Background(), c, "codecpanic", jobs(10, nil), func(result) error { return nil })
	t.Fatal("Run returned, want the codec's panic")
}

// TestWorkerBound: a worker holds no input it cannot start. With every
// slot busy, the inputs it has taken (the consumer's ack-pending count)
// are its running calls, the others wait in the stream, no pull request
// is waiting on the server, and no input was handed back for lack of a
// slot (redelivered).
func TestWorkerBound(t *testing.T) {
	const workers, slots, n = 3, 2, 20
	s := startServer(t)
	nc, js := connect(t, s)
	ev := watchEvents(t, nc)
	provision(t, js, "bound")
	serveInProcess(t, s, "bound", workers, work(nc), fofinats.WithWorkerConcurrency(slots))
	c := newClient(t, js)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- fofinats.Run(ctx, c, "bound", jobs(n, func(int) job { return job{Block: true} }),
			func(result) error { return nil }, fofi.WithConcurrency(n))
	}()
	ev.waitFor(t, 10*time.Second, "every slot to be busy", func(e []string) bool { return count(e, "start") == workers*slots })
	cons, err := js.Consumer(context.Background(), "FOFI_IN_bound", "workers")
	if err != nil {
		t.Fatal(err)
	}
	// The starts are reported before the workers would ask for more, and
	// they never do while full; a worker that asked beyond its free slots
	// would have inputs delivered and not started (ack pending), or a
	// request waiting.
	info, err := cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != workers*slots || info.NumPending != n-workers*slots || info.NumWaiting != 0 || info.NumRedelivered != 0 {
		t.Errorf("with %d workers of %d slots busy: ack pending %d, pending %d, waiting requests %d, redelivered %d; want %d, %d, 0, 0",
			workers, slots, info.NumAckPending, info.NumPending, info.NumWaiting, info.NumRedelivered, workers*slots, n-workers*slots)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}

// TestForeignInput: an input that no fofinats client published (no call
// number in its body) is terminated, not run, and the worker goes on
// serving.
func TestForeignInput(t *testing.T) {
	s := startServer(t)
	_, js := connect(t, s)
	provision(t, js, "foreign")
	ran := make(chan int, 2)
	serveInProcess(t, s, "foreign", 1, func(_ context.Context, x int) (int, error) {
		ran <- x
		return x, nil
	}, fofinats.WithWorkerConcurrency(1))
	if _, err := js.Publish(context.Background(), "fofi.in.foreign.someone.1", []byte("7")); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, js)
	if got, err := fofinats.Remote[int, int](c, "foreign")(context.Background(), 3); got != 3 || err != nil {
		t.Fatalf("Remote(3) = %d, %v, want 3, nil", got, err)
	}
	if x := <-ran; x != 3 {
		t.Errorf("the worker ran input %d, want only 3", x)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		msgs, pending, ackPending := queued(t, js, "foreign")
		if msgs == 0 && pending == 0 && ackPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s after: %d messages, %d pending, %d ack pending, want the foreign input terminated", msgs, pending, ackPending)
		}
	}
}

// TestWorkerReconnects: a worker goes on serving when its connection
// comes back: after the server dropped the connection (and, with it, the
// worker's waiting pull requests, without a status to end them: the worker
// gives up on them after their expiry and asks again), and after the
// server restarted (which ends them with a status).
func TestWorkerReconnects(t *testing.T) {
	s, opts := startFileServer(t)
	wnc, err := nats.Connect(s.ClientURL(), nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer wnc.Close()
	wjs, _ := jetstream.New(wnc)
	provision(t, wjs, "survive")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- fofinats.Serve(ctx, wjs, "survive", func(_ context.Context, x int) (int, error) { return 2 * x, nil },
			fofinats.WithWorkerConcurrency(2))
	}()
	call := func(x int) {
		t.Helper()
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		c, err := fofinats.NewClient(context.Background(), js)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		callCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		if got, err := fofinats.Remote[int, int](c, "survive")(callCtx, x); got != 2*x || err != nil {
			t.Fatalf("Remote(%d) = %d, %v, want %d, nil", x, got, err, 2*x)
		}
	}
	call(1) // the worker is pulling

	cid, err := wnc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DisconnectClientByID(cid); err != nil {
		t.Fatal(err)
	}
	call(2)

	s = restartServer(t, s, opts)
	call(3)
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after its context ended", err)
	}
}

// startFileServer starts a JetStream server on file storage in a fresh
// directory, on a free port, for a test that restarts it.
func startFileServer(t *testing.T) (*server.Server, *server.Options) {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	return s, opts
}

// restartServer shuts s down and starts it again on the same port and
// store; the new server is shut down when the test ends.
func restartServer(t *testing.T, s *server.Server, opts *server.Options) *server.Server {
	t.Helper()
	port := s.Addr().(*net.TCPAddr).Port
	s.Shutdown()
	s.WaitForShutdown()
	opts.Port = port
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("restarted server not ready")
	}
	return s
}

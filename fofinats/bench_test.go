package fofinats_test

import (
	"context"
	"iter"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fofi-go/fofi"
	"github.com/fofi-go/fofi/fofinats"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The benchmarks run an embedded server, workers and client in one
// process, each worker and the client on its own connection over loopback
// TCP. Run them with
//
//	go test -run '^$' -bench . -count 5 .
//
// BenchmarkRoundTrip compares, in the same run, on trivial work (x*2):
//
//	impl=floor     the least a JetStream work queue needs per call, written
//	               by hand: publish the input with a message id to a
//	               work-queue stream, workers pull it, reply on the client's
//	               core inbox, acknowledge
//	impl=fofinats  fofinats.Run over the same number of workers
//	impl=local     fofi.Run in the process: what the network adds per call
const (
	benchWorkers = 3
	benchSlots   = 128 // per worker
	benchWindow  = 512 // calls in flight from the client
)

func ints(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

// reportRate reports calls/s, and the CPU time the whole process (server,
// workers and client) spent per call: on a machine shared with other
// load, the CPU time varies less than the wall time.
func reportRate(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/call")
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkRoundTrip(b *testing.B) {
	double := func(_ context.Context, x int) (int, error) { return 2 * x, nil }
	b.Run("impl=floor", benchFloor)
	b.Run("impl=fofinats", func(b *testing.B) {
		s := startServer(b)
		_, js := connect(b, s)
		provision(b, js, "bench")
		serveInProcess(b, s, "bench", benchWorkers, double, fofinats.WithWorkerConcurrency(benchSlots))
		c := newClient(b, js)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuTime()
		sum := 0
		err := fofinats.Run(ctx, c, "bench", ints(b.N), func(v int) error {
			sum += v
			return nil
		}, fofi.WithConcurrency(benchWindow))
		if err != nil {
			b.Fatal(err)
		}
		if want := b.N * (b.N - 1); sum != want {
			b.Fatalf("sum %d, want %d", sum, want)
		}
		reportRate(b, cpu0)
	})
	b.Run("impl=local", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		sum := 0
		err := fofi.Run(context.Background(), ints(b.N), double, func(v int) error {
			sum += v
			return nil
		}, fofi.WithConcurrency(benchWindow))
		if err != nil {
			b.Fatal(err)
		}
		reportRate(b, cpu0)
	})
}

// serveInProcess runs n workers of the handler name in this process, each
// on its own connection, until the benchmark ends.
func serveInProcess[In, Out any](tb testing.TB, s *server.Server, name string, n int,
	work func(context.Context, In) (Out, error), opts ...fofinats.Option) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		_, js := connect(tb, s)
		wg.Go(func() {
			if err := fofinats.Serve(ctx, js, name, work, opts...); err != nil {
				tb.Error(err)
			}
		})
	}
	tb.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// benchFloor is the JetStream floor: the same round trip as a remote call,
// with nothing but what JetStream needs.
func benchFloor(b *testing.B) {
	s := startServer(b)
	nc, js := connect(b, s)
	ctx := context.Background()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "FLOOR", Subjects: []string{"floor.in"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
	})
	if err != nil {
		b.Fatal(err)
	}
	_, err = js.CreateConsumer(ctx, "FLOOR", jetstream.ConsumerConfig{
		Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: -1,
	})
	if err != nil {
		b.Fatal(err)
	}
	for range benchWorkers {
		wnc, wjs := connect(b, s)
		cons, err := wjs.Consumer(ctx, "FLOOR", "w")
		if err != nil {
			b.Fatal(err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			x, _ := strconv.Atoi(string(m.Data()))
			wnc.Publish(m.Headers().Get("Reply"), strconv.AppendInt(nil, int64(2*x), 10))
			m.Ack()
		}, jetstream.PullMaxMessages(benchSlots))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(cc.Stop)
	}
	window := make(chan struct{}, benchWindow)
	var sum int
	done := make(chan struct{})
	inbox := nats.NewInbox()
	received := 0
	sub, err := nc.Subscribe(inbox, func(m *nats.Msg) {
		x, _ := strconv.Atoi(string(m.Data))
		sum += x
		<-window
		if received++; received == b.N {
			close(done)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	sub.SetPendingLimits(-1, -1)
	defer sub.Unsubscribe()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := range b.N {
		window <- struct{}{}
		m := nats.NewMsg("floor.in")
		m.Data = strconv.AppendInt(nil, int64(i), 10)
		m.Header.Set("Reply", inbox)
		if _, err := js.PublishMsgAsync(m, jetstream.WithMsgID(strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("floor: %d of %d replies after a minute", received, b.N)
	}
	if want := b.N * (b.N - 1); sum != want {
		b.Fatalf("sum %d, want %d", sum, want)
	}
	reportRate(b, cpu0)
}

// BenchmarkSleep runs 400 calls of a 10ms sleep over 4 workers of 25 slots:
// 100 calls at once, so 4 rounds, ideally 40ms. It reports wall/ideal.
func BenchmarkSleep(b *testing.B) {
	const calls, workers, slots, sleep = 400, 4, 25, 10 * time.Millisecond
	s := startServer(b)
	_, js := connect(b, s)
	provision(b, js, "sleep")
	serveInProcess(b, s, "sleep", workers, func(ctx context.Context, x int) (int, error) {
		time.Sleep(sleep)
		return x, nil
	}, fofinats.WithWorkerConcurrency(slots))
	c := newClient(b, js)
	ideal := time.Duration(calls/(workers*slots)) * sleep
	b.ResetTimer()
	cpu0 := cpuTime()
	var total time.Duration
	for range b.N {
		start := time.Now()
		err := fofinats.Run(context.Background(), c, "sleep", ints(calls), func(int) error { return nil },
			fofi.WithConcurrency(calls))
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(ideal), "wall/ideal")
	b.ReportMetric(float64(calls*b.N)/total.Seconds(), "calls/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(calls*b.N), "cpu-ns/call")
}

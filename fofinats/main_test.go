package fofinats_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/fofi-go/fofi/fofinats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

// Worker processes are this test binary, run again with workerEnv set to
// the server's URL: TestMain then serves the handler named by handlerEnv
// instead of running tests, until its standard input is closed (by the
// test, or by the test process's death).
const (
	workerEnv  = "FOFINATS_TEST_WORKER"
	handlerEnv = "FOFINATS_TEST_HANDLER"
	slotsEnv   = "FOFINATS_TEST_SLOTS"
	// eventsSubject is where test workers report what they do, for tests
	// that wait for a condition on the workers (a call started, a context
	// ended) instead of sleeping.
	eventsSubject = "fofinats.test.events"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(workerEnv); url != "" {
		if err := runWorker(url); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// job is the input of the test handler: each field asks its worker for one
// behaviour.
type job struct {
	N       int           // the result is 2*N
	Sleep   time.Duration // sleep before answering, or until the call is cancelled
	Fail    bool          // return an error
	Panic   bool          // panic
	Exit    bool          // the worker process exits mid-call, as if killed
	Block   bool          // wait until the call's context ends, then report it
	Report  bool          // report start and end on eventsSubject
	Command string        // with Exit: exit only if this worker was started with it
}

// result is the output of the test handler.
type result struct {
	N      int // 2 * job.N
	Worker int // the worker's process id
}

// work is the test handler. Events on eventsSubject read "<verb> <pid> <N>".
func work(nc *nats.Conn) func(context.Context, job) (result, error) {
	pid := os.Getpid()
	report := func(verb string, n int) {
		nc.Publish(eventsSubject, fmt.Appendf(nil, "%s %d %d", verb, pid, n))
		nc.Flush()
	}
	return func(ctx context.Context, j job) (result, error) {
		if j.Report || j.Block || j.Exit {
			report("start", j.N)
			defer report("end", j.N)
		}
		switch {
		case j.Exit:
			os.Exit(3)
		case j.Panic:
			panic(fmt.Sprintf("job %d panics", j.N))
		case j.Fail:
			return result{}, fmt.Errorf("job %d fails", j.N)
		case j.Block:
			<-ctx.Done()
			report("cancelled", j.N)
			return result{}, ctx.Err()
		case j.Sleep > 0:
			select {
			case <-time.After(j.Sleep):
			case <-ctx.Done():
				return result{}, ctx.Err()
			}
		}
		return result{N: 2 * j.N, Worker: pid}, nil
	}
}

func runWorker(url string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	slots := 4
	fmt.Sscan(os.Getenv(slotsEnv), &slots)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		// The test closes our standard input to stop us.
		var b [1]byte
		os.Stdin.Read(b[:])
		stop()
	}()
	err = fofinats.Serve(ctx, js, os.Getenv(handlerEnv), work(nc), fofinats.WithWorkerConcurrency(slots))
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

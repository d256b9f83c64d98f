// Command demo runs a fofi fan-out across worker processes over NATS
// JetStream, in one command and without any outside service: it starts an
// embedded JetStream server, re-executes itself as -workers worker
// processes, runs -jobs jobs that each sleep 1 to 3 seconds across them,
// printing which worker ran what, kills one worker in the middle of a job
// (-kill) to show that its jobs are redelivered, and compares the wall time
// with one machine running the jobs one after another.
//
//	go run ./cmd/demo                  # 3 workers, 12 jobs, one worker killed
//	go run ./cmd/demo -kill=false -workers 6
//	go run ./cmd/demo -url nats://host:4222   # an existing server with JetStream
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/fofi-go/fofi"
	"github.com/fofi-go/fofi/fofinats"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A worker process is this program with workerEnv set to its name.
const (
	workerEnv = "FOFINATS_DEMO_WORKER"
	urlEnv    = "FOFINATS_DEMO_URL"
	slotsEnv  = "FOFINATS_DEMO_SLOTS"
	handler   = "demo-sleep"
)

// Job is the input of the handler: sleep for Seconds.
type Job struct {
	ID      int
	Seconds int
}

// Result is its output: who ran the job.
type Result struct {
	ID     int
	Worker string
}

func main() {
	log.SetFlags(0)
	if name := os.Getenv(workerEnv); name != "" {
		if err := worker(name); err != nil {
			log.Fatalf("%s: %v", name, err)
		}
		return
	}
	workers := flag.Int("workers", 3, "worker processes to start")
	slots := flag.Int("slots", 2, "jobs each worker runs at once")
	jobs := flag.Int("jobs", 12, "jobs to run, each sleeping 1 to 3 seconds")
	kill := flag.Bool("kill", true, "kill (SIGKILL) one worker in the middle of its first job")
	url := flag.String("url", "", "NATS server URL (JetStream enabled); empty starts an embedded server")
	ackWait := flag.Duration("ackwait", 2*time.Second, "how long a dead worker's jobs wait before they run again")
	flag.Parse()
	if err := coordinator(*url, *workers, *slots, *jobs, *kill, *ackWait); err != nil {
		log.Fatal(err)
	}
}

var start = time.Now()

func logf(format string, args ...any) {
	fmt.Printf("%6.2fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

func coordinator(url string, workers, slots, jobs int, kill bool, ackWait time.Duration) error {
	if url == "" {
		dir, err := os.MkdirTemp("", "fofinats-demo")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		srv, err := server.NewServer(&server.Options{
			Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
		})
		if err != nil {
			return err
		}
		go srv.Start()
		defer srv.WaitForShutdown()
		defer srv.Shutdown()
		if !srv.ReadyForConnections(10 * time.Second) {
			return errors.New("embedded server not ready after 10s")
		}
		url = srv.ClientURL()
		logf("embedded JetStream server at %s", url)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := fofinats.Provision(ctx, js, handler, fofinats.WithAckWait(ackWait)); err != nil {
		return err
	}

	// The workers, each printing what it does on its standard output,
	// which we relay with a time stamp; the first job start tells us whom
	// to kill.
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	type proc struct {
		name  string
		cmd   *exec.Cmd
		stdin io.Closer
	}
	var procs []*proc
	var relays sync.WaitGroup
	var startedMu sync.Mutex
	started := map[string]bool{} // jobs started, by "job N": a second start is a redelivery
	firstStart := make(chan string, 1)
	for i := range workers {
		p := &proc{name: fmt.Sprintf("w%d", i+1)}
		p.cmd = exec.Command(exe)
		p.cmd.Env = append(os.Environ(), workerEnv+"="+p.name, urlEnv+"="+url, fmt.Sprintf("%s=%d", slotsEnv, slots))
		p.cmd.Stderr = os.Stderr
		out, err := p.cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if p.stdin, err = p.cmd.StdinPipe(); err != nil {
			return err
		}
		if err := p.cmd.Start(); err != nil {
			return err
		}
		procs = append(procs, p)
		relays.Go(func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				line := sc.Text()
				if _, job, ok := strings.Cut(line, " starts "); ok {
					job, _, _ = strings.Cut(job, " (")
					startedMu.Lock()
					if started[job] {
						line += "  <- redelivered: the worker that had it died"
					}
					started[job] = true
					startedMu.Unlock()
				}
				logf("%s", line)
				if strings.Contains(line, " starts ") {
					select {
					case firstStart <- p.name:
					default:
					}
				}
			}
		})
	}
	defer func() {
		for _, p := range procs {
			p.stdin.Close() // a worker stops when its standard input closes
		}
		relays.Wait()
		for _, p := range procs {
			p.cmd.Wait()
		}
	}()
	logf("started %d worker processes with %d slots each", workers, slots)

	var killer sync.WaitGroup
	defer killer.Wait()
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	if kill {
		killer.Go(func() {
			select {
			case name := <-firstStart:
				select {
				case <-time.After(700 * time.Millisecond): // in the middle of its job
				case <-runCtx.Done():
					return
				}
				for _, p := range procs {
					if p.name == name {
						p.cmd.Process.Kill()
						logf("KILLED %s (pid %d, SIGKILL) in the middle of its jobs: they run again elsewhere after AckWait (%v)",
							name, p.cmd.Process.Pid, ackWait)
					}
				}
			case <-runCtx.Done():
			}
		})
	}

	c, err := fofinats.NewClient(ctx, js)
	if err != nil {
		return err
	}
	defer c.Close()
	var all []Job
	sum := 0
	for i := range jobs {
		j := Job{ID: i + 1, Seconds: 1 + (i*7)%3}
		all = append(all, j)
		sum += j.Seconds
	}
	runStart := time.Now()
	err = fofinats.Run(runCtx, c, handler, func(yield func(Job) bool) {
		for _, j := range all {
			if !yield(j) {
				return
			}
		}
	}, func(r Result) error {
		logf("consume: job %d done by %s", r.ID, r.Worker)
		return nil
	}, fofi.WithConcurrency(jobs))
	wall := time.Since(runStart)
	stopRun()
	if err != nil {
		return err
	}
	ideal := (time.Duration(sum) * time.Second) / time.Duration(workers*slots)
	fmt.Printf("\n%d jobs in %.2fs across %d workers x %d slots; one machine running them one after another: %ds (the sum), %.1fx slower.\n",
		jobs, wall.Seconds(), workers, slots, sum, float64(sum)*float64(time.Second)/float64(wall))
	fmt.Printf("Ideal with %d slots: %.2fs; the rest is the redelivery of the killed worker's jobs, and scheduling.\n",
		workers*slots, ideal.Seconds())
	return nil
}

func worker(name string) error {
	nc, err := nats.Connect(os.Getenv(urlEnv))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	slots := 2
	fmt.Sscan(os.Getenv(slotsEnv), &slots)
	ctx, stop := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin) // until the coordinator closes it, or dies
		stop()
	}()
	return fofinats.Serve(ctx, js, handler, func(ctx context.Context, j Job) (Result, error) {
		fmt.Printf("%s starts job %d (%ds)\n", name, j.ID, j.Seconds)
		select {
		case <-time.After(time.Duration(j.Seconds) * time.Second):
		case <-ctx.Done():
			fmt.Printf("%s gives job %d back: %v\n", name, j.ID, ctx.Err())
			return Result{}, ctx.Err()
		}
		return Result{ID: j.ID, Worker: name}, nil
	}, fofinats.WithWorkerConcurrency(slots))
}

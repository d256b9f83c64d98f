package fofinats_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"slices"

	"github.com/fofi-go/fofi"
	"github.com/fofi-go/fofi/fofinats"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Example runs a handler on a worker and calls it from a client. Here both
// live in this process, on an embedded server; in production they are
// separate processes on separate machines that share only the address of a
// NATS server run with JetStream enabled (nats-server -js).
func Example() {
	dir, err := os.MkdirTemp("", "fofinats-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	go srv.Start()
	defer srv.WaitForShutdown()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10e9) {
		log.Fatal("server not ready")
	}

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	// Once, by either side: the handler's stream and consumer.
	if err := fofinats.Provision(ctx, js, "square"); err != nil {
		log.Fatal(err)
	}

	// A worker: serves until its context ends.
	workerCtx, stopWorker := context.WithCancel(ctx)
	served := make(chan error)
	go func() {
		served <- fofinats.Serve(workerCtx, js, "square", func(ctx context.Context, x int) (int, error) {
			return x * x, nil
		})
	}()

	// A client: fofi.Run, with the work done by the workers.
	c, err := fofinats.NewClient(ctx, js)
	if err != nil {
		log.Fatal(err)
	}
	err = fofinats.Run(ctx, c, "square", slices.Values([]int{1, 2, 3, 4}), func(sq int) error {
		fmt.Println(sq)
		return nil
	}, fofi.WithOrdered())
	fmt.Println("run:", err)

	c.Close()
	stopWorker()
	fmt.Println("worker:", <-served)
	// Output:
	// 1
	// 4
	// 9
	// 16
	// run: <nil>
	// worker: <nil>
}

package fofinats_test

import (
	"context"
	"slices"
	"testing"

	"github.com/fofi-go/fofi"
	"github.com/fofi-go/fofi/fofinats"
)

func TestSmoke(t *testing.T) {
	s := startServer(t)
	_, js := connect(t, s)
	provision(t, js, "smoke")
	startWorkers(t, s, "smoke", 2, 4)
	c := newClient(t, js)
	var jobs []job
	for i := range 100 {
		jobs = append(jobs, job{N: i})
	}
	sum := 0
	err := fofinats.Run(context.Background(), c, "smoke", slices.Values(jobs), func(r result) error {
		sum += r.N
		return nil
	}, fofi.WithConcurrency(16))
	if err != nil || sum != 9900 {
		t.Fatalf("Run = %v, sum %d", err, sum)
	}
}

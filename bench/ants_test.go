package bench

import (
	"context"
	"sync"

	"github.com/panjf2000/ants/v2"
)

func init() {
	register(contestant{name: "ants.PoolWithFunc", start: startAnts})
}

// antsRun is the state of the run in progress. An ants PoolWithFunc is
// built around one function, fixed when the pool is made, so the function
// reads the run's work and results channel from here. The fields are
// written before the run's first Invoke and read by workers that received
// an input through the pool, which orders the reads after the writes.
type antsRun struct {
	work    func(int) int
	results chan int
	tasks   sync.WaitGroup
}

// startAnts makes one pool per sub-benchmark, as ants is meant to be used:
// the generic PoolWithFunc (ants.PoolWithFuncGeneric), which passes an int
// without boxing it in an interface. Invoke blocks while all c workers are
// busy, so the input streams.
func startAnts(c int) (runFunc, func()) {
	st := &antsRun{}
	p, err := ants.NewPoolWithFuncGeneric(c, func(v int) {
		st.results <- st.work(v)
		st.tasks.Done()
	})
	if err != nil {
		panic(err)
	}
	return func(_ context.Context, in source, work func(int) int, consume func(int)) error {
		st.work, st.results = work, make(chan int, c)
		var invokeErr error
		go func() {
			for v := range in.seq {
				st.tasks.Add(1)
				if err := p.Invoke(v); err != nil {
					st.tasks.Done()
					invokeErr = err
					break
				}
			}
			st.tasks.Wait()
			close(st.results) // after the last task has sent
		}()
		for r := range st.results {
			consume(r)
		}
		return invokeErr // written before close(results)
	}, p.Release
}

package fofinats

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The inputs of a Run are published in input order. fofi starts a run's
// calls on many goroutines at once, and the order in which those reach the
// server is a race: when the workers are busy the inputs wait in the
// handler's work queue, which hands them out in the order it stored them,
// so an input that lost the race by a few microseconds ran after every
// input published before it: a failing input queued behind fifty calls of
// ten seconds stopped its run minutes late. So Run pulls its inputs
// through pull, which numbers them, and a call publishes, in order, every
// input up to its own that is not published yet, whether or not fofi has
// started those calls: no call ever waits for another to start, and the
// stream holds the run's inputs in input order.
//
// Words used below, once:
//
//	ticket     an input of a Run, from the moment the run pulls it
//	publisher  the one call at a time that publishes the queue of tickets;
//	           the others raise the target and go on

// errEncodePanicked answers the calls whose inputs a codec panic left
// unpublished; fofi replays the panic itself on Run's caller.
var errEncodePanicked = errors.New("fofinats: not published: the codec panicked")

// ticket is an input of a Run. Its call (rs.call) waits for ready, closed
// by the publisher once the input is published (sent) or failed to be
// (err). A ticket published before fofi starts its call keeps its answer
// in p.done until the call comes.
type ticket struct {
	in    any    // the input until it is encoded
	index uint64 // its position in the run's inputs
	ready chan struct{}
	p     *pending // set before ready is closed
	err   error    // set before ready is closed

	// Guarded by runState.mu.
	taken   bool // the publisher took it: ready will be closed
	dropped bool // its call stopped waiting before it was taken: never publish it
}

// runState is what the calls of one run share, and the queue of tickets
// that Run publishes in order. The calls made outside Run share the
// client's runState "0", which has no queue.
type runState struct {
	c         *Client
	id        string // "0" for calls outside Run
	inRun     bool
	name      string           // the handler (Run only)
	stream    jetstream.Stream // the handler's stream (Run only)
	cancelled sync.Once

	pulled uint64 // tickets made; only pull, on the run's iterating goroutine, uses it

	mu         sync.Mutex
	queue      []*ticket     // pulled and not yet taken by a publisher, in input order
	next       uint64        // the index of queue[0]
	target     uint64        // every ticket with a lower index is to be published
	publisher  bool          // a publisher is at work
	batch      []*ticket     // the publisher's, reused; handed from one to the next under mu
	unanswered int           // inputs published that the server has not answered yet
	allDone    chan struct{} // made by waitAnswered, closed when unanswered falls to 0
}

// cancel tells the workers, once, that the run has stopped: they cancel
// its calls in flight and terminate its inputs that reach them later.
func (rs *runState) cancel() {
	rs.cancelled.Do(func() {
		rs.c.nc.Publish(cancelPrefix+rs.c.id, []byte(rs.id))
	})
}

// track adds n to the run's inputs published and not yet answered by the
// server (see pending.published).
func (rs *runState) track(n int) {
	rs.mu.Lock()
	rs.unanswered += n
	rs.wakeIfDone()
	rs.mu.Unlock()
}

// answered counts one input the server has answered.
func (rs *runState) answered() { rs.track(-1) }

// wakeIfDone closes allDone once nothing is unanswered. mu is held.
func (rs *runState) wakeIfDone() {
	if rs.unanswered == 0 && rs.allDone != nil {
		close(rs.allDone)
		rs.allDone = nil
	}
}

// waitAnswered waits until the server has answered every input the run
// published, or for d at most: a purge sent before then could reach the
// stream before inputs published earlier on the same connection (the
// server stores messages and serves API requests on different goroutines),
// and leave them queued. The client's publisher fails every input it has
// not heard of within the server timeout, so d is only a bound.
func (rs *runState) waitAnswered(d time.Duration) {
	rs.mu.Lock()
	if rs.unanswered == 0 {
		rs.mu.Unlock()
		return
	}
	done := make(chan struct{})
	rs.allDone = done
	rs.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// pull makes the ticket of the run's next input and queues it. Run's
// iterator calls it, on one goroutine.
func (rs *runState) pull(in any) *ticket {
	t := &ticket{in: in, index: rs.pulled, ready: make(chan struct{})}
	rs.pulled++
	rs.mu.Lock()
	rs.queue = append(rs.queue, t)
	rs.mu.Unlock()
	return t
}

// call is the work call of the ticket t: it makes sure that every input up
// to t's is published, publishing them itself unless another call is at it,
// and waits for t's answer. It returns when the answer comes, when ctx ends
// (it then cancels the call on the workers, or drops t if it is not
// published yet), or with an error when t cannot be encoded or published.
func (rs *runState) call(ctx context.Context, t *ticket) ([]byte, error) {
	rs.mu.Lock()
	rs.target = max(rs.target, t.index+1)
	lead := !rs.publisher
	rs.publisher = true
	rs.mu.Unlock()
	if lead {
		rs.publish()
	}
	select {
	case <-t.ready:
	case <-ctx.Done():
		rs.mu.Lock()
		taken := t.taken
		t.dropped = !taken
		rs.mu.Unlock()
		if !taken {
			// Not published, so no worker has it; a stopping run still
			// tells the workers at once, for its calls in flight.
			if errors.Is(ctx.Err(), context.Canceled) {
				rs.cancel()
			}
			return nil, ctx.Err()
		}
		// A publisher is publishing it, which takes at most the
		// publisher's stall wait: wait, so that the call is cancelled
		// by its number.
		<-t.ready
	}
	if t.err != nil {
		return nil, t.err
	}
	return rs.c.await(ctx, rs, rs.stream, t.p)
}

// publish publishes the queued tickets below the target, in order, until
// there are none, then stops being the publisher. Only the publisher calls
// it, and only it uses rs.batch meanwhile. It holds mu only to take tickets
// from the queue, never while it publishes.
func (rs *runState) publish() {
	batch, i := rs.batch, 0
	defer func() {
		if i == len(batch) {
			return
		}
		// A codec panicked in send, which fofi replays on the caller:
		// the tickets taken after it are answered, so that their calls
		// do not wait for ever, and the role is left for the next call.
		for _, t := range batch[i+1:] {
			if t.taken {
				t.err = errEncodePanicked
				close(t.ready)
			}
		}
		clear(batch)
		rs.mu.Lock()
		rs.batch = batch[:0]
		rs.publisher = false
		rs.mu.Unlock()
	}()
	for {
		rs.mu.Lock()
		n := int(min(rs.target-rs.next, uint64(len(rs.queue))))
		if n == 0 {
			rs.batch = batch[:0]
			rs.publisher = false
			rs.mu.Unlock()
			return
		}
		batch = append(batch[:0], rs.queue[:n]...)
		clear(rs.queue[:n])
		rs.queue = rs.queue[n:]
		rs.next += uint64(n)
		for _, t := range batch {
			t.taken = !t.dropped
		}
		rs.mu.Unlock()
		for i = 0; i < len(batch); i++ {
			if batch[i].taken {
				rs.send(batch[i])
			}
			batch[i] = nil
		}
	}
}

// send encodes and publishes the input of t, then closes t.ready.
func (rs *runState) send(t *ticket) {
	// Replaced below unless the codec panics, so that t's call, if it is
	// another's, has an error to return.
	t.err = errEncodePanicked
	defer close(t.ready)
	data, err := rs.c.cfg.codec.Marshal(t.in)
	if err != nil {
		t.err = fmt.Errorf("fofinats: handler %q: encode input %T: %w", rs.name, t.in, err)
		return
	}
	t.in = nil
	t.p, t.err = rs.c.send(rs, rs.name, rs.stream.CachedInfo().Config.Name, data)
}

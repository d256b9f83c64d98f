package fofinats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// ErrNotProvisioned is wrapped by the error of a call, a [Run] or a [Serve]
// for a handler whose stream does not exist on the server: a mistyped name,
// or a handler nobody has provisioned yet (see [Provision]).
var ErrNotProvisioned = errors.New("fofinats: handler not provisioned")

// maxDeliveriesAdvisory is the subject on which the server announces an
// input it has delivered MaxDeliver times without an acknowledgement; the
// last two tokens are the stream and the consumer.
const maxDeliveriesAdvisory = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."

// resultsInactive is how long the server keeps a client's results consumer
// after the client stops pulling from it (it died): its results are then
// left to expire (resultsMaxAge).
const resultsInactive = time.Minute

// A Client makes remote calls: [Remote] turns it into a fofi work function
// and [Run] runs a whole fan-out with it. It receives the results of all its
// calls on one subscription of its own, so one Client per process is
// usually enough. A Client is safe for concurrent use by any number of
// goroutines and runs. Close it when done.
type Client struct {
	js  jetstream.JetStream // fofinats's own, on the caller's connection
	nc  *nats.Conn
	pub *publisher // stores the inputs
	id  string     // a NUID: names the client's subjects and call ids
	cfg config

	resCons string // the results consumer's name, deleted by Close
	adv     *nats.Subscription

	outside *runState // the run "0" of the calls made outside Run

	seq  atomic.Uint64 // the last call's sequence number
	runs atomic.Uint64 // the last run's number; run "0" holds the calls made outside Run

	watchDone   chan struct{} // closed by Close to stop watch
	watchExited chan struct{} // closed by watch when it returns

	mu       sync.Mutex
	closed   bool
	calls    map[uint64]*pending         // calls waiting for an answer, by sequence number
	inputs   map[storedInput]uint64      // stored inputs of those calls, for advisories
	handlers map[string]jetstream.Stream // handler streams looked up so far
	results  jetstream.ConsumeContext    // receives results; replaced by recover
}

// pending is a call waiting for its answer. Whoever removes it from
// Client.calls sends the answer, once, on done (capacity 1): the results
// callback, the advisory callback, the publisher (the input was not
// stored) or failAll. A call that stops waiting removes itself and sends
// nothing.
type pending struct {
	c      *Client
	seq    uint64 // the call's number in its client
	name   string // the handler
	stream string // the handler's stream
	run    *runState
	done   chan answer
	stored uint64 // the input's sequence in stream once stored; guarded by c.mu
}

type answer struct {
	data []byte
	err  error
}

// storedInput names an input in the server: its stream and sequence.
type storedInput struct {
	stream string
	seq    uint64
}

// NewClient connects a client to the JetStream server behind js: it makes
// sure the results stream exists (see [Provision]) and subscribes to the
// client's results. It uses [WithCodec] and [WithServerTimeout] and
// [WithReplicas] (for the results stream) and ignores the other options. It
// blocks until the server has answered, at most [WithServerTimeout] per
// request, and returns an error if ctx ends first or the server is down.
//
// The Client uses js's connection and API prefix or domain, not js's
// publishing settings. Closing the connection makes every call in flight
// fail; a connection that is down for longer than [WithServerTimeout] makes
// the calls waiting for results fail with [ErrUnavailable].
func NewClient(ctx context.Context, js jetstream.JetStream, opts ...Option) (*Client, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	switch {
	case ctx == nil:
		return nil, optionError("NewClient: nil context")
	case js == nil:
		return nil, optionError("NewClient: nil JetStream")
	}
	c := &Client{
		nc:          js.Conn(),
		id:          nuid.Next(),
		cfg:         cfg,
		watchDone:   make(chan struct{}),
		watchExited: make(chan struct{}),
		calls:       make(map[uint64]*pending),
		inputs:      make(map[storedInput]uint64),
		handlers:    make(map[string]jetstream.Stream),
	}
	c.outside = &runState{c: c, id: "0"}
	c.resCons = "client-" + c.id
	if c.js, err = ownJetStream(js, cfg); err != nil {
		return nil, fmt.Errorf("fofinats: NewClient: %w", err)
	}
	if err := ensureResults(ctx, c.js, cfg); err != nil {
		return nil, err
	}
	if c.pub, err = newPublisher(c.nc, cfg.serverTimeout); err != nil {
		return nil, fmt.Errorf("fofinats: NewClient: subscribe to acknowledgements: %w", err)
	}
	if err := c.subscribeResults(ctx); err != nil {
		c.pub.close()
		return nil, err
	}
	if c.adv, err = c.nc.Subscribe(maxDeliveriesAdvisory+">", c.onMaxDeliveries); err != nil {
		c.stopResults()
		c.deleteConsumer()
		c.pub.close()
		return nil, fmt.Errorf("fofinats: NewClient: subscribe to advisories: %w", err)
	}
	go func() {
		defer close(c.watchExited)
		c.watch()
	}()
	return c, nil
}

// Close stops the client: calls in flight fail with [ErrClosed], the
// client's results subscription and consumer are removed and its unread
// results purged. It blocks for at most [WithServerTimeout] per request to
// the server and returns the first error of those requests; the client is
// closed either way. Close does not close the connection. Calling Close
// again returns nil.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.failAll(ErrClosed)
	close(c.watchDone)
	<-c.watchExited
	c.stopResults()
	c.adv.Unsubscribe()
	err := c.deleteConsumer()
	if err == nil {
		err = withTimeout(context.Background(), c.cfg, func(ctx context.Context) error {
			s, err := c.js.Stream(ctx, resultsStream)
			if err == nil {
				err = s.Purge(ctx, jetstream.WithPurgeSubject(outPrefix+c.id))
			}
			return err
		})
	}
	c.pub.close()
	if err != nil {
		return fmt.Errorf("fofinats: Close: %w", err)
	}
	return nil
}

// subscribeResults creates the client's consumer on the results stream
// and starts receiving from it. Only NewClient and watch call it, never at
// the same time.
func (c *Client) subscribeResults(ctx context.Context) error {
	var cons jetstream.Consumer
	err := withTimeout(ctx, c.cfg, func(ctx context.Context) (err error) {
		cons, err = c.js.CreateOrUpdateConsumer(ctx, resultsStream, jetstream.ConsumerConfig{
			Name:              c.resCons,
			Description:       "fofinats: results of one client",
			FilterSubject:     outPrefix + c.id,
			AckPolicy:         jetstream.AckExplicitPolicy,
			MaxAckPending:     -1,
			InactiveThreshold: resultsInactive,
			Replicas:          c.cfg.replicas,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("fofinats: create consumer %s on stream %s: %w", c.resCons, resultsStream, err)
	}
	cc, err := cons.Consume(c.onResult)
	if err != nil {
		return fmt.Errorf("fofinats: consume results: %w", err)
	}
	c.mu.Lock()
	c.results = cc
	c.mu.Unlock()
	return nil
}

// stopResults stops receiving results and waits for the results callback
// to return.
func (c *Client) stopResults() {
	c.mu.Lock()
	cc := c.results
	c.results = nil
	c.mu.Unlock()
	if cc != nil {
		cc.Stop()
		<-cc.Closed()
	}
}

// recoverResults checks, after the connection came back, that the server still
// has the client's results consumer. A server that restarted has lost it
// (and, for results in flight, possibly their messages): the calls waiting
// then fail with ErrUnavailable instead of waiting for results that will
// not come, and the consumer is made again for the calls to come. It
// reports whether the consumer is in place.
func (c *Client) recoverResults() bool {
	err := withTimeout(context.Background(), c.cfg, func(ctx context.Context) error {
		_, err := c.js.Consumer(ctx, resultsStream, c.resCons)
		return err
	})
	switch {
	case err == nil:
		return true
	case !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound):
		return false // try again at the next tick
	}
	c.failAll(fmt.Errorf("fofinats: the server lost the client's results (did it restart?): %w", ErrUnavailable))
	c.stopResults()
	ctx := context.Background()
	return ensureResults(ctx, c.js, c.cfg) == nil && c.subscribeResults(ctx) == nil
}

func (c *Client) deleteConsumer() error {
	return withTimeout(context.Background(), c.cfg, func(ctx context.Context) error {
		return c.js.DeleteConsumer(ctx, resultsStream, c.resCons)
	})
}

// handler returns the stream of the handler name, looking it up once.
func (c *Client) handler(ctx context.Context, name string) (jetstream.Stream, error) {
	c.mu.Lock()
	s, ok := c.handlers[name]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	err := withTimeout(ctx, c.cfg, func(ctx context.Context) (err error) {
		s, err = c.js.Stream(ctx, handlerStream(name))
		return err
	})
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("fofinats: handler %q: no stream %s, call Provision first: %w", name, handlerStream(name), ErrNotProvisioned)
	case err != nil:
		return nil, fmt.Errorf("fofinats: handler %q: look up stream %s: %w", name, handlerStream(name), err)
	}
	c.mu.Lock()
	c.handlers[name] = s
	c.mu.Unlock()
	return s, nil
}

// call publishes one input of the handler name and waits for its answer:
// the path of [Remote]. It returns when the answer comes, when ctx ends (it
// then cancels the call on the workers), or with an error when the server
// does not take the input.
func (c *Client) call(ctx context.Context, name string, data []byte) ([]byte, error) {
	s, err := c.handler(ctx, name)
	if err != nil {
		return nil, err
	}
	rs := runOf(ctx, c)
	p, err := c.send(rs, name, s.CachedInfo().Config.Name, data)
	if err != nil {
		return nil, err
	}
	return c.await(ctx, rs, s, p)
}

// send registers a call of the handler name, whose stream is stream, in
// the run rs and publishes its input. It does not wait for the server: its
// answer comes to the call's pending.published.
func (c *Client) send(rs *runState, name, stream string, data []byte) (*pending, error) {
	seq := c.seq.Add(1)
	p := &pending{c: c, seq: seq, name: name, stream: stream, run: rs, done: make(chan answer, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.calls[seq] = p
	c.mu.Unlock()

	// The body is the call's number, a newline, and the encoded input (see
	// provision.go).
	body := make([]byte, 0, 21+len(data))
	body = strconv.AppendUint(body, seq, 10)
	body = append(body, '\n')
	m := &nats.Msg{Subject: inPrefix + name + "." + c.id + "." + rs.id, Data: append(body, data...)}
	if rs.inRun {
		rs.track(1)
	}
	if err := c.pub.publish(m, p); err != nil {
		if rs.inRun {
			rs.track(-1) // no answer will come
		}
		c.forget(p)
		return nil, c.publishError(name, err)
	}
	return p, nil
}

// published learns from the publisher what became of the call's input:
// stored at seq, remembered for the advisories of inputs that killed their
// workers, or not stored, which is the call's answer. Either way the
// server has answered, which its run counts.
func (p *pending) published(seq uint64, err error) {
	c := p.c
	c.mu.Lock()
	waiting := c.calls[p.seq] == p
	switch {
	case waiting && err == nil:
		p.stored = seq
		c.inputs[storedInput{p.stream, seq}] = p.seq
	case waiting:
		delete(c.calls, p.seq)
	}
	c.mu.Unlock()
	if waiting && err != nil {
		p.done <- answer{err: c.publishError(p.name, err)}
	}
	if p.run.inRun {
		p.run.answered()
	}
}

// await waits for the answer to the call p, whose input went to the stream
// s. It returns when the answer comes (an error if the server did not take
// the input) or when ctx ends (it then cancels the call on the workers).
func (c *Client) await(ctx context.Context, rs *runState, s jetstream.Stream, p *pending) ([]byte, error) {
	select {
	case a := <-p.done:
		stored := c.forget(p)
		if errors.Is(a.err, ErrMaxDeliveries) {
			// The server has given up on the input but keeps it in
			// the stream, where it would stay.
			withTimeout(context.WithoutCancel(ctx), c.cfg, func(ctx context.Context) error {
				return s.DeleteMsg(ctx, stored)
			})
		}
		return a.data, a.err
	case <-ctx.Done():
		stored := c.forget(p)
		// Cancel the call on the worker running it, if any; a worker
		// that takes it later terminates it. A run that stops
		// (context.Canceled, where a call's own timeout is
		// DeadlineExceeded) cancels all its calls with one message,
		// at once, so that no worker starts another of them, and
		// purges its inputs when it returns; a call outside Run
		// removes its own input.
		if rs.inRun && errors.Is(ctx.Err(), context.Canceled) {
			rs.cancel()
		} else {
			c.nc.Publish(cancelPrefix+c.id, []byte(rs.id+" "+strconv.FormatUint(p.seq, 10)))
		}
		if !rs.inRun && stored != 0 {
			withTimeout(context.WithoutCancel(ctx), c.cfg, func(ctx context.Context) error {
				return s.DeleteMsg(ctx, stored)
			})
		}
		return nil, ctx.Err()
	}
}

// forget removes the call p, which stopped waiting, and returns its
// input's stream sequence (0 if not known to be stored).
func (c *Client) forget(p *pending) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls[p.seq] == p {
		delete(c.calls, p.seq)
	}
	if p.stored != 0 {
		delete(c.inputs, storedInput{p.stream, p.stored})
	}
	return p.stored
}

func (c *Client) publishError(name string, err error) error {
	switch {
	case errors.Is(err, errNoStream):
		return fmt.Errorf("fofinats: handler %q: no stream took the input, call Provision first: %w", name, ErrNotProvisioned)
	case errors.Is(err, errPublishTimeout):
		return fmt.Errorf("fofinats: handler %q: the server did not acknowledge the input within %v: %w", name, c.cfg.serverTimeout, ErrUnavailable)
	case errors.Is(err, jetstream.ErrJetStreamPublisherClosed):
		return ErrClosed
	}
	return fmt.Errorf("fofinats: handler %q: publish the input: %w", name, err)
}

// onResult receives a result from a worker, on the results consumer's
// goroutine. Results are acknowledged (and so removed from the stream)
// whether or not a call waits for them: one that nobody waits for is a
// duplicate, or the result of a call that stopped waiting.
func (c *Client) onResult(msg jetstream.Msg) {
	h := msg.Headers()
	id := h.Get(jetstream.MsgIDHeader) // <client>.<seq>
	seq, _ := strconv.ParseUint(id[strings.LastIndexByte(id, '.')+1:], 10, 64)
	status := h.Get(hdrStatus)
	c.mu.Lock()
	p := c.calls[seq]
	delete(c.calls, seq)
	c.mu.Unlock()
	msg.Ack()
	if p == nil {
		return
	}
	if status == "" {
		p.done <- answer{data: msg.Data()}
		return
	}
	var r report
	if err := json.Unmarshal(msg.Data(), &r); err != nil {
		r.Msg = fmt.Sprintf("(unreadable report: %v)", err)
		r.Value = r.Msg
	}
	switch status {
	case statusError:
		p.done <- answer{err: &RemoteError{Name: p.name, Worker: r.Worker, Msg: r.Msg}}
	case statusPanic:
		p.done <- answer{err: &RemotePanicError{Name: p.name, Worker: r.Worker, Value: r.Value, Stack: r.Stack}}
	default:
		p.done <- answer{err: fmt.Errorf("fofinats: %s on %s: result with unknown status %q", p.name, r.Worker, status)}
	}
}

// onMaxDeliveries fails the call whose input the server gave up on.
func (c *Client) onMaxDeliveries(m *nats.Msg) {
	var adv struct {
		Stream     string `json:"stream"`
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries int    `json:"deliveries"`
	}
	if !strings.HasPrefix(strings.TrimPrefix(m.Subject, maxDeliveriesAdvisory), streamPrefix) ||
		json.Unmarshal(m.Data, &adv) != nil {
		return
	}
	c.mu.Lock()
	seq, ok := c.inputs[storedInput{adv.Stream, adv.StreamSeq}]
	p := c.calls[seq]
	if ok {
		delete(c.calls, seq)
	}
	c.mu.Unlock()
	if p != nil {
		p.done <- answer{err: fmt.Errorf("fofinats: handler %q: input %d of stream %s delivered %d times, its workers died before answering: %w",
			p.name, adv.StreamSeq, adv.Stream, adv.Deliveries, ErrMaxDeliveries)}
	}
}

// endRun forgets the calls of the run rs that nobody waits for: inputs it
// published ahead of their work calls (see runState.publish) when the run
// stopped before it made those calls.
func (c *Client) endRun(rs *runState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for seq, p := range c.calls {
		if p.run == rs {
			delete(c.calls, seq)
			if p.stored != 0 {
				delete(c.inputs, storedInput{p.stream, p.stored})
			}
		}
	}
}

// failAll answers every waiting call with err.
func (c *Client) failAll(err error) {
	c.mu.Lock()
	calls := c.calls
	c.calls = make(map[uint64]*pending)
	clear(c.inputs)
	c.mu.Unlock()
	for _, p := range calls {
		p.done <- answer{err: err}
	}
}

// watch fails the waiting calls once the connection has been down for the
// server timeout: their results may come back when it reconnects, but a
// caller should not wait for that without a bound. It returns when
// watchDone is closed.
func (c *Client) watch() {
	t := time.NewTicker(min(max(c.cfg.serverTimeout/10, 10*time.Millisecond), time.Second))
	defer t.Stop()
	var downSince time.Time
	reconnects := c.nc.Stats().Reconnects
	checked := true // the results consumer is known to be in place
	for {
		var now time.Time
		select {
		case <-c.watchDone:
			return
		case now = <-t.C:
		}
		switch {
		case c.nc.IsConnected():
			downSince = time.Time{}
			if r := c.nc.Stats().Reconnects; r != reconnects {
				reconnects, checked = r, false
			}
			if !checked {
				checked = c.recoverResults()
			}
		case c.nc.IsClosed():
			c.failAll(fmt.Errorf("fofinats: connection closed: %w", ErrUnavailable))
		case downSince.IsZero():
			downSince = now
		case now.Sub(downSince) >= c.cfg.serverTimeout:
			c.failAll(fmt.Errorf("fofinats: connection down for %v: %w", c.cfg.serverTimeout, ErrUnavailable))
		}
	}
}

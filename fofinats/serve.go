package fofinats

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The worker's side. Words used below, once:
//
//	slot     one call a worker can run; it is "held" from the moment the
//	         worker asks the server for an input until the call returns
//	answer   what a worker does with an input it took: acknowledge it (its
//	         result is stored), hand it back (Nak: another worker runs it now)
//	         or terminate it (Term: its client no longer wants it)
//	stop     the end of Serve, when its ctx ends
//
// A worker holds at most its slots' worth of inputs it has not finished,
// counted from the pull request: it never holds an input it cannot start,
// so an input waits in the stream, where any worker may take it, rather
// than behind a busy one. A call's slot is free again when the call
// returns, while its result is still on its way to the server: the next
// input is pulled during that round trip instead of after it. Results
// waiting for the server count against the slots beyond the first slots'
// worth, so that a slow server slows the worker down.
const (
	// fetchWait is how long one pull request waits for inputs on the
	// server (see pull.go). It bounds how long a stopping worker waits for
	// the pull requests it has open (so that it can hand back what they
	// still bring), and so most of the time Serve takes to return; an idle
	// worker sends one pull request per fetchWait.
	fetchWait = 400 * time.Millisecond
	// publishDrain is how long a stopping worker waits for the server to
	// acknowledge the results it has published. An input whose result is
	// not acknowledged in time is handed back, to be run again; its result
	// is stored once all the same (message ids).
	publishDrain = 250 * time.Millisecond
	// retryWait is the pause after a failed pull request before the next.
	retryWait = 250 * time.Millisecond
	// nakDelay is how long an input whose result the server did not store
	// waits before it is delivered again: a passing failure (no results
	// stream, which a restarted server lost until a client makes it again;
	// no acknowledgement in time) must not use up the input's deliveries
	// (WithMaxDeliver) at once. A stopping worker hands its inputs back
	// without delay.
	nakDelay = 500 * time.Millisecond
	// refillShare sets when a busy worker asks for more: once a quarter of
	// its slots are free, so that quick calls are pulled in batches, not one
	// request per call. A worker with no input coming asks as soon as one
	// slot is free.
	refillShare = 4
	// cancelMemory is how long a worker remembers a cancelled run or call,
	// to terminate an input of it that was already on its way when the
	// cancellation came; cancelMemoryMax bounds the memory.
	cancelMemory    = time.Minute
	cancelMemoryMax = 1 << 14
)

// errCancelled is the cause of a call's context when its client cancelled
// the call or its run.
var errCancelled = errors.New("fofinats: call cancelled by its client")

// Serve runs a worker of the handler name: it pulls inputs from the
// handler's stream, calls work for each on its own goroutine, at most
// [WithWorkerConcurrency] at once, and publishes each result for the client
// that made the call. It blocks until ctx ends, then stops, and returns nil;
// it returns an error at once if the handler is not provisioned (see
// [Provision]), and later if the connection is closed or the handler's
// consumer deleted. While the connection is down, Serve waits for it to
// come back.
//
// Each call gets a context that ends when Serve's ctx ends or when the
// client cancels the call (its run failed, or its own context ended); its
// values are those of ctx. A call that returns an error after its client
// cancelled it is terminated without an answer. A work error is sent back
// as a [*RemoteError]; a panic in work is recovered, sent back as a
// [*RemotePanicError], and the worker goes on serving.
//
// Inputs are delivered at least once: an input whose worker dies, or loses
// its connection for longer than [WithAckWait], runs again on another
// worker, so work must be idempotent. While a call runs, Serve tells the
// server every AckWait/3 that the input is in progress, so a long call is
// not redelivered while its worker lives.
//
// Stopping: when ctx ends, Serve asks for no more inputs and hands back
// (Nak) every input it receives from then on, so that another worker runs
// it at once; the calls in flight see their context end. A call that then
// returns an error is handed back too; one that returns a result has it
// published. Serve returns once every call has returned and its results are
// acknowledged (or after publishDrain, 250ms, at most: unacknowledged
// inputs are redelivered after AckWait): within about 700ms of ctx ending
// when work returns promptly on cancellation. A work function that ignores
// its context delays the return until it returns.
//
// Serve is safe to run many times at once, in one process or many; each
// is one worker. The worker's name, reported in errors, is the host name and
// process id.
func Serve[In, Out any](ctx context.Context, js jetstream.JetStream, name string,
	work func(context.Context, In) (Out, error), opts ...Option) error {
	cfg, err := newConfig(opts)
	if err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return err
	}
	switch {
	case ctx == nil:
		return optionError("Serve(%q): nil context", name)
	case js == nil:
		return optionError("Serve(%q): nil JetStream", name)
	case work == nil:
		return optionError("Serve(%q): nil work function", name)
	}
	codec := cfg.codec
	handle := func(ctx context.Context, data []byte) ([]byte, error) {
		var in In
		if err := codec.Unmarshal(data, &in); err != nil {
			return nil, fmt.Errorf("decode input as %T: %w", in, err)
		}
		out, err := work(ctx, in)
		if err != nil {
			return nil, err
		}
		b, err := codec.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("encode result %T: %w", out, err)
		}
		return b, nil
	}
	w, err := newWorker(ctx, js, name, cfg, handle)
	if err != nil {
		return err
	}
	return w.serve(ctx)
}

// worker is one running Serve.
type worker struct {
	name    string
	id      string
	js      jetstream.JetStream // fofinats's own, for the consumer's lookup
	nc      *nats.Conn          // js's
	pub     *publisher          // stores the results; made and closed by serve
	slots   int
	ackWait time.Duration
	timeout time.Duration // WithServerTimeout
	handle  func(context.Context, []byte) ([]byte, error)

	wg   sync.WaitGroup // the calls; waited for by serve
	wake chan struct{}  // capacity 1: a slot was released or a pull request ended

	inbox       string // the prefix of the pull requests' reply subjects
	nextSubject string // where pull requests go: the consumer's MSG.NEXT

	mu         sync.Mutex
	held       int                     // slots held: asked for, or delivered and not yet returned
	asked      int                     // inputs the open pull requests may still bring
	requests   map[string]*pullRequest // pull requests not seen to end, by reply subject
	reqNum     uint64                  // the last pull request's number
	pause      time.Time               // no pull request before then (after an error)
	stopping   bool                    // ctx ended: hand back whatever arrives
	fatal      error                   // ends serve: the connection closed, the consumer deleted
	calls      map[string]*call        // running, by call key
	publishing int                     // results waiting for the server's acknowledgement
	cancelled  map[string]time.Time    // recently cancelled runs and calls, by key
}

// call is one input a worker has taken.
type call struct {
	w           *worker
	msg         *nats.Msg
	input       []byte // the encoded input, in msg.Data
	id          string // the call's id: <client>.<seq>
	client, run string
	cancel      context.CancelCauseFunc
}

// callKey names a call in worker.calls and worker.cancelled: its id, also
// its result's message id. cancelRunKey names a cancelled run in worker.cancelled.
func callKey(client, seq string) string      { return client + "." + seq }
func cancelRunKey(client, run string) string { return client + "/run/" + run }

var workerCount atomic.Int64

// workerID names a worker in errors: host:pid, and a number when one
// process runs several.
func workerID() string {
	host, _ := os.Hostname()
	id := fmt.Sprintf("%s:%d", host, os.Getpid())
	if n := workerCount.Add(1); n > 1 {
		id += fmt.Sprintf("/%d", n)
	}
	return id
}

func newWorker(ctx context.Context, js jetstream.JetStream, name string, cfg config,
	handle func(context.Context, []byte) ([]byte, error)) (*worker, error) {
	w := &worker{
		name:      name,
		id:        workerID(),
		slots:     cfg.workerConcurrency,
		timeout:   cfg.serverTimeout,
		handle:    handle,
		wake:      make(chan struct{}, 1),
		requests:  make(map[string]*pullRequest),
		calls:     make(map[string]*call),
		cancelled: make(map[string]time.Time),
	}
	var (
		err  error
		cons jetstream.Consumer
	)
	w.js, err = ownJetStream(js, cfg)
	if err != nil {
		return nil, fmt.Errorf("fofinats: Serve(%q): %w", name, err)
	}
	err = withTimeout(ctx, cfg, func(ctx context.Context) error {
		cons, err = w.js.Consumer(ctx, handlerStream(name), consumerName)
		return err
	})
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("fofinats: Serve(%q): no stream %s with consumer %s, call Provision first: %w",
			name, handlerStream(name), consumerName, ErrNotProvisioned)
	case err != nil:
		return nil, fmt.Errorf("fofinats: Serve(%q): look up consumer %s of stream %s: %w", name, consumerName, handlerStream(name), err)
	}
	w.ackWait = cons.CachedInfo().Config.AckWait
	w.nc = w.js.Conn()
	w.inbox = w.nc.NewInbox()
	w.nextSubject = apiPrefix(js) + "CONSUMER.MSG.NEXT." + handlerStream(name) + "." + consumerName
	return w, nil
}

func (w *worker) serve(ctx context.Context) error {
	sub, err := w.nc.Subscribe(cancelPrefix+"*", w.onCancel)
	if err != nil {
		return fmt.Errorf("fofinats: Serve(%q): subscribe to cancellations: %w", w.name, err)
	}
	defer sub.Unsubscribe()
	if w.pub, err = newPublisher(w.nc, w.timeout); err != nil {
		return fmt.Errorf("fofinats: Serve(%q): subscribe to acknowledgements: %w", w.name, err)
	}
	// The inbox subscription lives as long as Serve. Its callback starts
	// calls (wg), so it must have returned for good before wg.Wait: serve
	// waits for the subscription's closed handler.
	inboxClosed := make(chan struct{})
	inbox, err := w.nc.Subscribe(w.inbox+".*", func(m *nats.Msg) { w.onPull(ctx, m) })
	if err != nil {
		w.pub.close()
		return fmt.Errorf("fofinats: Serve(%q): subscribe to %s: %w", w.name, w.inbox, err)
	}
	inbox.SetClosedHandler(func(string) { close(inboxClosed) })
	inbox.SetPendingLimits(-1, -1)   // what arrives is bounded by the slots asked for
	beatsDone := make(chan struct{}) // closed by serve once every call has returned
	beatsExited := make(chan struct{})
	go func() {
		defer close(beatsExited)
		w.beat(beatsDone)
	}()

	err = w.pull(ctx)

	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	// pull has waited for the open pull requests to end (within
	// fetchWait+pullGrace), or met a fatal error: nothing more is coming.
	if inbox.Unsubscribe() == nil {
		<-inboxClosed
	}
	// The calls' contexts derive from ctx and have ended (unless a fatal
	// error ended the loop).
	w.wg.Wait()
	close(beatsDone)
	<-beatsExited
	w.pub.waitIdle(publishDrain)
	// Fails the publishes still waiting, whose inputs are handed back.
	w.pub.close()
	return err
}

// take starts a call for msg, or answers it at once: hands it back if the
// worker is stopping, terminates it if its client cancelled it.
func (w *worker) take(ctx context.Context, msg *nats.Msg) {
	c := &call{w: w, msg: msg}
	// The subject is fofi.in.<name>.<client>.<run>, the body
	// <seq>\n<input> (see provision.go).
	rest := msg.Subject[min(len(msg.Subject), len(inPrefix)+len(w.name)+1):]
	c.client, c.run, _ = strings.Cut(rest, ".")
	seq, input, ok := bytes.Cut(msg.Data, []byte{'\n'})
	if !ok || len(seq) == 0 || len(seq) > 20 || c.client == "" {
		// Not from a fofinats client: nobody could receive its result.
		w.answer(msg, ackTerm)
		w.release(1)
		return
	}
	c.input = input
	c.id = callKey(c.client, string(seq))

	w.mu.Lock()
	stopping := w.stopping
	cancelled := false
	if len(w.cancelled) > 0 {
		_, runCancelled := w.cancelled[cancelRunKey(c.client, c.run)]
		_, callCancelled := w.cancelled[c.id]
		cancelled = runCancelled || callCancelled
	}
	if !stopping && !cancelled {
		var callCtx context.Context
		callCtx, c.cancel = context.WithCancelCause(ctx)
		w.calls[c.id] = c
		// Under mu, so that no call starts once serve has set stopping
		// and waits for the calls.
		w.wg.Go(func() { w.run(callCtx, c) })
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	if stopping {
		w.answer(msg, ackNak)
	} else {
		w.answer(msg, ackTerm)
	}
	w.release(1)
}

// run calls work for c and answers its input.
func (w *worker) run(ctx context.Context, c *call) {
	status, body := statusPanic, []byte(nil)
	returned := false
	defer func() {
		if !returned {
			// A panic on a worker is recovered and sent back instead of
			// crashing the process, unlike fofi, which replays a panic on
			// the caller's goroutine: here the caller is another process.
			// Crashing would lose every call the worker runs, and the input
			// would be redelivered to crash the next worker in turn. The
			// caller still learns of it, with the value and this stack, as
			// a *RemotePanicError; nothing is delayed or lost. A Goexit
			// (recover returns nil) is reported the same way.
			v := recover()
			if v == nil {
				v = "runtime.Goexit called"
			}
			body, _ = json.Marshal(report{Worker: w.id, Value: fmt.Sprint(v), Stack: debug.Stack()})
		}
		cancelled := errors.Is(context.Cause(ctx), errCancelled)
		stopped := ctx.Err() != nil
		c.cancel(nil)
		w.mu.Lock()
		delete(w.calls, c.id)
		w.mu.Unlock()
		switch {
		case cancelled && status != statusOK:
			// Nobody waits for it.
			w.answer(c.msg, ackTerm)
			w.release(1)
		case stopped && status == statusError:
			// Serve is stopping: another worker runs it now.
			w.answer(c.msg, ackNak)
			w.release(1)
		default:
			w.publish(c, status, body)
		}
	}()
	out, err := w.handle(ctx, c.input)
	returned = true
	if err != nil {
		status = statusError
		body, _ = json.Marshal(report{Worker: w.id, Msg: err.Error()})
	} else {
		status, body = statusOK, out
	}
}

// report is the body of a statusError or statusPanic result.
type report struct {
	Worker string `json:"worker"`
	Msg    string `json:"msg,omitempty"`   // statusError: the error's text
	Value  string `json:"value,omitempty"` // statusPanic: the panic's value
	Stack  []byte `json:"stack,omitempty"` // statusPanic: the worker's stack
}

// publish stores c's result for its client. The input is acknowledged when
// the server acknowledges the result (see call.published): a worker that dies in
// between leaves the input to be run again, never a result lost.
func (w *worker) publish(c *call, status string, body []byte) {
	m := &nats.Msg{
		Subject: outPrefix + c.client,
		Data:    body,
		Header:  nats.Header{jetstream.MsgIDHeader: []string{c.id}},
	}
	if status != statusOK {
		m.Header[hdrStatus] = []string{status}
	}
	w.mu.Lock()
	w.publishing++
	w.held--
	w.mu.Unlock()
	w.signal()
	if err := w.pub.publish(m, c); err != nil {
		c.published(0, err)
	}
}

// published answers c's input once the server has answered its result:
// acknowledges it if the result is stored, hands it back otherwise, to be
// run again after nakDelay (at once if the worker is stopping). It wakes
// the pull loop, in case results waiting for the server held slots.
func (c *call) published(_ uint64, err error) {
	w := c.w
	w.mu.Lock()
	w.publishing--
	w.mu.Unlock()
	w.signal()
	switch {
	case err == nil:
		w.answer(c.msg, ackAck)
	case errors.Is(err, jetstream.ErrJetStreamPublisherClosed):
		w.answer(c.msg, ackNak)
	default:
		w.answer(c.msg, ackNakDelay)
	}
}

// answer answers the input m: ackAck, ackNak, ackTerm or ackProgress.
func (w *worker) answer(m *nats.Msg, how []byte) {
	w.nc.Publish(m.Reply, how)
}

// release gives back n slots and wakes the pull loop.
func (w *worker) release(n int) {
	w.mu.Lock()
	w.held -= n
	w.mu.Unlock()
	w.signal()
}

func (w *worker) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// beat tells the server, every AckWait/3, that the running calls are in
// progress, until done is closed.
func (w *worker) beat(done <-chan struct{}) {
	t := time.NewTicker(w.ackWait / 3)
	defer t.Stop()
	var msgs []*nats.Msg
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		msgs = msgs[:0]
		w.mu.Lock()
		for _, c := range w.calls {
			msgs = append(msgs, c.msg)
		}
		w.mu.Unlock()
		for _, m := range msgs {
			w.answer(m, ackProgress)
		}
	}
}

// onCancel handles a cancellation from a client, on fofi.cancel.<client>:
// its body is "<run>" for a whole run, "<run> <seq>" for one call. It
// cancels the matching calls and remembers the cancellation, for inputs
// still on their way.
func (w *worker) onCancel(m *nats.Msg) {
	client := strings.TrimPrefix(m.Subject, cancelPrefix)
	run, seq, oneCall := strings.Cut(string(m.Data), " ")
	key := cancelRunKey(client, run)
	if oneCall {
		key = callKey(client, seq)
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.cancelled) >= cancelMemoryMax {
		for k, t := range w.cancelled {
			if now.Sub(t) > cancelMemory {
				delete(w.cancelled, k)
			}
		}
		if len(w.cancelled) >= cancelMemoryMax {
			clear(w.cancelled)
		}
	}
	w.cancelled[key] = now
	for _, c := range w.calls {
		if oneCall && c.id == key || !oneCall && c.client == client && c.run == run {
			c.cancel(errCancelled)
		}
	}
}

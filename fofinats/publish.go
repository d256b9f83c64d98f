package fofinats

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A publisher stores messages in JetStream streams without waiting for
// the server: the inputs of a client, the results of a worker. It is the
// client library's asynchronous publishing cut down to what fofinats needs,
// because that one costs every message a timer, a future with its channels,
// and a JSON decoding of the server's acknowledgement, twice per call: here
// the acknowledgement is read in place, one sweep per tenth of the
// timeout (sweepsPerTimeout) fails the messages the server has not answered, and the one who
// published a message hears of it through a method, not a channel.
//
// Each message goes out with a reply subject of its own under the
// publisher's inbox (<inbox>.<n>), on which the server answers once it has
// stored the message (or refused it).
type publisher struct {
	nc      *nats.Conn
	prefix  string // <inbox>.
	timeout time.Duration
	sub     *nats.Subscription

	sweepDone   chan struct{} // closed by close, to stop sweep
	sweepExited chan struct{} // closed by sweep when it returns

	mu      sync.Mutex
	last    uint64             // the last message's number
	waiting map[uint64]pubWait // published and not yet answered, by number
	idle    chan struct{}      // made by waitIdle, closed when waiting empties
	closed  bool
}

// A publishee is told, once, what became of a message it published: the
// stream sequence it was stored at, or why it was not (an error from the
// server, errPublishTimeout, or the publisher's close).
type publishee interface {
	published(seq uint64, err error)
}

type pubWait struct {
	to   publishee
	sent time.Time
}

// sweepsPerTimeout is how many times per timeout the publisher looks for
// messages the server has not answered: a message fails between its
// timeout and a tenth of it later.
const sweepsPerTimeout = 10

// errPublishTimeout is the error of a message the server did not answer
// within the publisher's timeout; errNoStream of a message no stream took.
var (
	errPublishTimeout = errors.New("fofinats: no acknowledgement from the server in time")
	errNoStream       = errors.New("fofinats: no stream for the subject")
)

// newPublisher subscribes to an inbox for the server's acknowledgements.
func newPublisher(nc *nats.Conn, timeout time.Duration) (*publisher, error) {
	p := &publisher{
		nc:          nc,
		prefix:      nc.NewInbox() + ".",
		timeout:     timeout,
		sweepDone:   make(chan struct{}),
		sweepExited: make(chan struct{}),
		waiting:     make(map[uint64]pubWait),
	}
	sub, err := nc.Subscribe(p.prefix+"*", p.onAck)
	if err != nil {
		return nil, err
	}
	sub.SetPendingLimits(-1, -1) // bounded by the messages published
	p.sub = sub
	go func() {
		defer close(p.sweepExited)
		p.sweep()
	}()
	return p, nil
}

// publish publishes m and tells to what became of it: never before
// publish returns, unless publish returns an error, in which case it tells
// nothing. m.Reply is set.
func (p *publisher) publish(m *nats.Msg, to publishee) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return jetstream.ErrJetStreamPublisherClosed
	}
	p.last++
	n := p.last
	p.waiting[n] = pubWait{to: to, sent: time.Now()}
	p.mu.Unlock()
	m.Reply = p.prefix + strconv.FormatUint(n, 10)
	if err := p.nc.PublishMsg(m); err != nil {
		p.mu.Lock()
		_, ok := p.waiting[n]
		p.forget(n)
		p.mu.Unlock()
		if !ok {
			// Answered or swept meanwhile, and told.
			return nil
		}
		return err
	}
	return nil
}

// forget removes the message n from waiting. mu is held.
func (p *publisher) forget(n uint64) {
	delete(p.waiting, n)
	if len(p.waiting) == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
}

// onAck reads the server's answer to a message, on the subscription's
// goroutine. A stored message is answered {"stream":"S","seq":N,...}, a
// refused one {"error":{...}}, and one no stream listens for with a 503
// status.
func (p *publisher) onAck(m *nats.Msg) {
	n, err := strconv.ParseUint(m.Subject[len(p.prefix):], 10, 64)
	if err != nil {
		return
	}
	p.mu.Lock()
	w, ok := p.waiting[n]
	p.forget(n)
	p.mu.Unlock()
	if !ok {
		return
	}
	seq, err := readPubAck(m)
	w.to.published(seq, err)
}

// readPubAck reads the stream sequence of a stored message from the
// server's answer, or the error the server answered with.
func readPubAck(m *nats.Msg) (uint64, error) {
	if len(m.Data) == 0 {
		if m.Header.Get("Status") == "503" {
			return 0, errNoStream
		}
		return 0, jetstream.ErrInvalidJSAck
	}
	if !bytes.Contains(m.Data, []byte(`"error"`)) {
		if i := bytes.Index(m.Data, []byte(`"seq":`)); i >= 0 {
			rest := m.Data[i+len(`"seq":`):]
			j := 0
			for j < len(rest) && '0' <= rest[j] && rest[j] <= '9' {
				j++
			}
			if seq, err := strconv.ParseUint(string(rest[:j]), 10, 64); err == nil && seq > 0 {
				return seq, nil
			}
		}
	}
	var pa struct {
		Error *jetstream.APIError `json:"error"`
		Seq   uint64              `json:"seq"`
	}
	switch err := json.Unmarshal(m.Data, &pa); {
	case err != nil:
		return 0, jetstream.ErrInvalidJSAck
	case pa.Error != nil:
		return 0, pa.Error
	}
	return pa.Seq, nil
}

// sweep fails, every tenth of the timeout, the messages the server has
// not answered within the timeout, until close.
func (p *publisher) sweep() {
	t := time.NewTicker(max(p.timeout/sweepsPerTimeout, time.Millisecond))
	defer t.Stop()
	var late []publishee
	for {
		var now time.Time
		select {
		case <-p.sweepDone:
			return
		case now = <-t.C:
		}
		late = late[:0]
		p.mu.Lock()
		for n, w := range p.waiting {
			if now.Sub(w.sent) >= p.timeout {
				late = append(late, w.to)
				p.forget(n)
			}
		}
		p.mu.Unlock()
		for _, to := range late {
			to.published(0, errPublishTimeout)
		}
		clear(late)
	}
}

// waitIdle waits until the server has answered every message published,
// or for d at most.
func (p *publisher) waitIdle(d time.Duration) {
	p.mu.Lock()
	if len(p.waiting) == 0 {
		p.mu.Unlock()
		return
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	idle := p.idle
	p.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
}

// close stops the publisher: the messages still waiting fail with
// ErrJetStreamPublisherClosed, and so does every later publish. It
// returns once the sweeper and the acknowledgements' callback have
// returned. Calling close again does nothing.
func (p *publisher) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	waiting := p.waiting
	p.waiting = make(map[uint64]pubWait)
	if p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
	p.mu.Unlock()
	close(p.sweepDone)
	<-p.sweepExited
	subClosed := make(chan struct{})
	p.sub.SetClosedHandler(func(string) { close(subClosed) })
	if p.sub.Unsubscribe() == nil {
		<-subClosed
	}
	for _, w := range waiting {
		w.to.published(0, jetstream.ErrJetStreamPublisherClosed)
	}
}

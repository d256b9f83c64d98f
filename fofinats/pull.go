package fofinats

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A worker's pull requests. A worker subscribes once, for its life, to an
// inbox of its own, and asks the server for inputs by publishing pull
// requests ({"batch":n,"expires":ns}) to the consumer's
// $JS.API.CONSUMER.MSG.NEXT subject, each with a reply subject of its own
// under that inbox (<inbox>.<n>): a request costs one message, where a
// subscription per request (the client library's Fetch) cost a
// subscription, an unsubscription and a goroutine.
//
// The server delivers inputs to the reply subjects of the waiting
// requests in turn (an input arrives with its own subject, not the
// request's), and ends a request it could not fill with a status message
// on its reply subject: 408 when it expires, 409 for other reasons, with
// the number of inputs it did not bring (Nats-Pending-Messages). A request
// it fills ends without a word. So the worker counts, over all its
// requests, the inputs they may still bring ("asked"): the request adds
// its batch, an input takes one, a status gives back what its request did
// not bring. Those inputs hold slots until they come.
const (
	// pullGrace is how long after a request's expiry, by the worker's
	// clock, the worker stops waiting for the status that ends it (lost
	// with a connection that dropped): its slots are free again. An input
	// that arrives for a request so forgotten is taken if a slot is free
	// and handed back otherwise, so the bound on held inputs holds even
	// then.
	pullGrace = 100 * time.Millisecond
)

// The bodies that answer an input, published on its reply subject.
var (
	ackAck      = []byte("+ACK")
	ackNak      = []byte("-NAK")
	ackNakDelay = fmt.Appendf(nil, `-NAK {"delay":%d}`, nakDelay.Nanoseconds())
	ackTerm     = []byte("+TERM")
	ackProgress = []byte("+WPI")
)

// pullRequest is a pull request the worker has not seen end: its batch,
// and when it expires on the worker's clock.
type pullRequest struct {
	batch   int
	expires time.Time
}

// apiPrefix returns the JetStream API prefix of js: "$JS.API." unless js
// was made with a domain or a prefix of its own.
func apiPrefix(js jetstream.JetStream) string {
	o := js.Options()
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		if o.APIPrefix[len(o.APIPrefix)-1] != '.' {
			return o.APIPrefix + "."
		}
		return o.APIPrefix
	}
	return jetstream.DefaultAPIPrefix
}

// pull asks the server for inputs while slots are free, until ctx ends or
// a fatal error; after ctx ends it waits, without asking, for the open
// requests to end, so that what they still bring is handed back.
func (w *worker) pull(ctx context.Context) error {
	body := make([]byte, 0, 64)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stopped, done := false, ctx.Done()
	for {
		now := time.Now()
		w.mu.Lock()
		next := w.expireRequests(now)
		free, fatal := w.slots-w.held-max(0, w.publishing-w.slots), w.fatal
		ask := !stopped && free > 0 && now.After(w.pause) &&
			(w.asked == 0 || free >= max(1, w.slots/refillShare))
		var reply string
		if ask {
			w.reqNum++
			reply = w.inbox + "." + strconv.FormatUint(w.reqNum, 10)
			w.requests[reply] = &pullRequest{batch: free, expires: now.Add(fetchWait)}
			w.held += free
			w.asked += free
			next = min(next, fetchWait+pullGrace)
		}
		if !ask && free > 0 && w.pause.After(now) {
			next = min(next, w.pause.Sub(now))
		}
		open := w.asked > 0
		w.mu.Unlock()
		switch {
		case fatal != nil:
			return fatal
		case stopped && !open:
			return nil
		}
		if ask {
			body = append(body[:0], `{"batch":`...)
			body = strconv.AppendInt(body, int64(free), 10)
			body = append(body, `,"expires":`...)
			body = strconv.AppendInt(body, int64(fetchWait), 10)
			body = append(body, '}')
			if err := w.nc.PublishRequest(w.nextSubject, reply, body); err != nil {
				w.endRequest(reply, -1, time.Now().Add(retryWait))
				if w.nc.IsClosed() {
					return fmt.Errorf("fofinats: Serve(%q): connection closed: %w", w.name, err)
				}
			}
		}
		timer.Reset(next)
		select {
		case <-done:
			stopped, done = true, nil
			w.mu.Lock()
			w.stopping = true // hand back whatever the open requests bring
			w.mu.Unlock()
		case <-w.wake:
		case <-timer.C:
		}
	}
}

// expireRequests forgets the requests past their expiry and pullGrace,
// and returns how long until the next one would be. Once every request is
// past it, none can bring anything: the slots still asked for are free
// again. mu is held.
func (w *worker) expireRequests(now time.Time) time.Duration {
	next := time.Hour
	for reply, r := range w.requests {
		d := r.expires.Add(pullGrace).Sub(now)
		if d <= 0 {
			delete(w.requests, reply)
			continue
		}
		next = min(next, d)
	}
	if len(w.requests) == 0 {
		w.held -= w.asked
		w.asked = 0
	}
	return next
}

// endRequest forgets the pull request reply, which the server ended
// without bringing left of its inputs (-1: its batch), and pauses the next
// request until pause (after an error, so as not to spin).
func (w *worker) endRequest(reply string, left int, pause time.Time) {
	w.mu.Lock()
	if r, ok := w.requests[reply]; ok {
		if left < 0 {
			left = r.batch
		}
		left = min(left, w.asked)
		w.asked -= left
		w.held -= left
		delete(w.requests, reply)
	}
	if pause.After(w.pause) {
		w.pause = pause
	}
	w.mu.Unlock()
	w.signal()
}

// onPull receives what the server sends to the worker's inbox: inputs,
// and the status messages that end pull requests. It runs on the
// subscription's goroutine, one message at a time.
func (w *worker) onPull(ctx context.Context, m *nats.Msg) {
	if len(m.Data) == 0 && len(m.Header) > 0 {
		if status := m.Header.Get("Status"); status != "" {
			w.onStatus(m, status)
			return
		}
	}
	w.mu.Lock()
	switch {
	case w.asked > 0:
		// Its slot is held since the request.
		w.asked--
	case w.held < w.slots:
		// From a request the worker gave up on (see pullGrace).
		w.held++
	default:
		w.mu.Unlock()
		w.answer(m, ackNak)
		return
	}
	w.mu.Unlock()
	w.take(ctx, m)
}

// onStatus handles a status message that ends the pull request
// m.Subject: 408 (expired), 409 (ended early: consumer deleted, leadership
// change, too many requests waiting...), or an error (400, 503 when no
// server answers for the consumer). 100 (an idle heartbeat, which the
// worker does not ask for) ends nothing.
func (w *worker) onStatus(m *nats.Msg, status string) {
	if status == "100" {
		return
	}
	left := -1 // the whole batch: a request refused at once
	if p, err := strconv.Atoi(m.Header.Get("Nats-Pending-Messages")); err == nil {
		left = p
	}
	var pause time.Time
	switch {
	case status == "408":
	case status == "409" && m.Header.Get("Description") == "Consumer Deleted":
		w.mu.Lock()
		w.fatal = fmt.Errorf("fofinats: Serve(%q): consumer deleted: %w", w.name, jetstream.ErrConsumerDeleted)
		w.mu.Unlock()
	default:
		pause = time.Now().Add(retryWait)
	}
	w.endRequest(m.Subject, left, pause)
}

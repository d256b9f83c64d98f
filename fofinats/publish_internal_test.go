package fofinats

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestReadPubAck(t *testing.T) {
	status503 := nats.Header{"Status": {"503"}}
	for _, tc := range []struct {
		name    string
		data    string
		header  nats.Header
		seq     uint64
		wantErr error
	}{
		{"stored", `{"stream":"FOFI_IN_x","seq":42}`, nil, 42, nil},
		{"duplicate", `{"stream":"FOFI_IN_x","seq":7,"duplicate":true}`, nil, 7, nil},
		{"domain", `{"stream":"S","domain":"hub","seq":9}`, nil, 9, nil},
		{"spaced", `{"stream": "S", "seq": 11}`, nil, 11, nil},
		{"no stream", "", status503, 0, errNoStream},
		{"refused", `{"error":{"code":400,"err_code":10071,"description":"wrong last sequence"}}`, nil, 0, &jetstream.APIError{ErrorCode: 10071}},
		{"garbage", `not json`, nil, 0, jetstream.ErrInvalidJSAck},
		{"empty", "", nil, 0, jetstream.ErrInvalidJSAck},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq, err := readPubAck(&nats.Msg{Data: []byte(tc.data), Header: tc.header})
			if seq != tc.seq || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("readPubAck(%q) = %d, %v, want %d, %v", tc.data, seq, err, tc.seq, tc.wantErr)
			}
		})
	}
}

// told records what a publisher told of one message.
type told chan error

func (c told) published(_ uint64, err error) { c <- err }

// TestPublisher: a message no stream takes fails with errNoStream, one
// nobody answers with errPublishTimeout after about the timeout, one
// waiting when the publisher closes with ErrJetStreamPublisherClosed; a
// publish after close is an error. Each is told once.
func TestPublisher(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready in 10s")
	}
	defer s.Shutdown()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	silent, err := nc.Subscribe("silent", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Unsubscribe()
	const timeout = 100 * time.Millisecond
	p, err := newPublisher(nc, timeout)
	if err != nil {
		t.Fatal(err)
	}

	c := make(told, 2)
	if err := p.publish(nats.NewMsg("nobody"), c); err != nil {
		t.Fatal(err)
	}
	if err := <-c; !errors.Is(err, errNoStream) {
		t.Errorf("publish to no stream: told %v, want errNoStream", err)
	}

	start := time.Now()
	if err := p.publish(nats.NewMsg("silent"), c); err != nil {
		t.Fatal(err)
	}
	if err := <-c; !errors.Is(err, errPublishTimeout) {
		t.Errorf("publish nobody answers: told %v, want errPublishTimeout", err)
	}
	if d := time.Since(start); d < timeout || d > 3*timeout {
		t.Errorf("timeout told after %v, want between %v and %v", d, timeout, 3*timeout)
	}

	p2, err := newPublisher(nc, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.publish(nats.NewMsg("silent"), c); err != nil {
		t.Fatal(err)
	}
	p2.close()
	if err := <-c; !errors.Is(err, jetstream.ErrJetStreamPublisherClosed) {
		t.Errorf("publish waiting at close: told %v, want ErrJetStreamPublisherClosed", err)
	}
	if err := p2.publish(nats.NewMsg("silent"), c); !errors.Is(err, jetstream.ErrJetStreamPublisherClosed) {
		t.Errorf("publish after close = %v, want ErrJetStreamPublisherClosed", err)
	}
	p.close()
	p.close()
	select {
	case err := <-c:
		t.Errorf("told again: %v", err)
	default:
	}
}

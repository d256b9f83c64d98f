package fofinats

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names on the server. A handler "resize" has
//
//	stream FOFI_IN_resize on fofi.in.resize.>   a work queue: an input leaves it once answered
//	consumer "workers" on that stream            shared by every worker of the handler
//	inputs on fofi.in.resize.<client>.<run>      so that one run's inputs can be purged alone
//
// and every client has
//
//	results on fofi.out.<client>                 in the stream FOFI_OUT, shared by all clients
//	cancellations on fofi.cancel.<client>        core NATS, not stored: they matter only now
//
// Handler names are restricted to letters, digits, '-' and '_' so that a
// name is one subject token and part of a valid stream name, and the prefix
// FOFI_IN_ keeps every handler stream apart from FOFI_OUT.
const (
	inPrefix       = "fofi.in."
	outPrefix      = "fofi.out."
	cancelPrefix   = "fofi.cancel."
	streamPrefix   = "FOFI_IN_"
	resultsStream  = "FOFI_OUT"
	consumerName   = "workers"
	maxHandlerName = 64

	// duplicateWindow is how long the server remembers a message id: a
	// result published twice within it (a worker that died between
	// publishing the result and acknowledging the input) is stored once.
	// The client drops later duplicates itself.
	duplicateWindow = 2 * time.Minute
	// resultsMaxAge bounds how long a result waits for a client that died
	// before it read it. A live client reads its results at once and removes
	// them by acknowledging them.
	resultsMaxAge = time.Hour
)

// A call's id is "<client>.<seq>", seq the call's number in its client.
// Its input has no header: its body is "<seq>\n" and the encoded input, the
// client in its subject. Its result has one, the call's id as JetStream's
// Nats-Msg-Id, so that a result published twice (by a worker that died
// before it acknowledged the input, and the next) is stored once; an error
// or a panic has a second, hdrStatus, and the worker's name in its body.
// (The status is not a subject token: a client's results consumer filters
// one literal subject, which the server matches faster than a wildcard.)
// Every header costs a parse on every message, on the server and on the
// client, and an input's
// message id would cost the server an entry in its duplicate window
// (duplicateWindow) for nothing: a client publishes an input once.
// hdrStatus is the header of a result that is not statusOK: statusError or
// statusPanic.
const hdrStatus = "Fofi-Status"

const (
	statusOK    = "ok"
	statusError = "error"
	statusPanic = "panic"
)

func handlerStream(name string) string   { return streamPrefix + name }
func handlerSubjects(name string) string { return inPrefix + name + ".>" }

// checkName reports whether name can name a handler.
func checkName(name string) error {
	if name == "" {
		return optionError("handler name \"\": name must not be empty")
	}
	if len(name) > maxHandlerName {
		return optionError("handler name %q: name must be at most %d bytes", name, maxHandlerName)
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
			return optionError("handler name %q: use letters, digits, '-' and '_' only", name)
		}
	}
	return nil
}

// Provision creates the stream and the durable consumer of the handler
// name, and the results stream shared by all handlers, or updates them to
// match opts: [WithAckWait], [WithMaxDeliver], [WithGlobalLimit] and
// [WithReplicas]; it ignores the other options. It is idempotent, so every
// worker and client may call it at start-up with the same options; calls
// with different options leave the last one's settings in place. Inputs
// queued for the handler survive it.
//
// Provision blocks until the server has answered, at most
// [WithServerTimeout] per request, and returns an error naming the handler
// if ctx ends first, the server is down or the stream cannot be created
// (for instance when another stream already takes its subjects).
func Provision(ctx context.Context, js jetstream.JetStream, name string, opts ...Option) error {
	cfg, err := newConfig(opts)
	if err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return err
	}
	if js == nil {
		return optionError("Provision(%q): nil JetStream", name)
	}
	if err := ensureResults(ctx, js, cfg); err != nil {
		return err
	}
	maxAckPending := -1 // no limit but the workers' own
	if cfg.globalLimitSet {
		maxAckPending = cfg.globalLimit
	}
	err = withTimeout(ctx, cfg, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        handlerStream(name),
			Description: "fofinats: inputs of handler " + name,
			Subjects:    []string{handlerSubjects(name)},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  duplicateWindow,
			Replicas:    cfg.replicas,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("fofinats: Provision(%q): create stream %s: %w", name, handlerStream(name), err)
	}
	err = withTimeout(ctx, cfg, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateConsumer(ctx, handlerStream(name), jetstream.ConsumerConfig{
			Durable:       consumerName,
			Description:   "fofinats: workers of handler " + name,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.ackWait,
			MaxDeliver:    cfg.maxDeliver,
			MaxAckPending: maxAckPending,
			FilterSubject: handlerSubjects(name),
			Replicas:      cfg.replicas,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("fofinats: Provision(%q): create consumer %s: %w", name, consumerName, err)
	}
	return nil
}

// ensureResults creates or updates the stream that carries results back to
// clients. Results are stored, not sent on core NATS, so that a worker can
// acknowledge its input once the server holds the result: nothing is lost
// between the two.
//
// The stream is in memory: a result lives there for the milliseconds
// between the worker and its client, and a file store costs every call a
// write and a delete on disk (a quarter of the CPU time of a trivial call,
// BenchmarkRoundTrip). A server that restarts loses the results in flight
// with the client's consumer, which the client notices: its waiting calls
// fail with ErrUnavailable (see Client.recoverResults), where a file store
// would have kept them. A results stream that already exists on file, made
// by an earlier version, stays on file: storage cannot change in place.
func ensureResults(ctx context.Context, js jetstream.JetStream, cfg config) error {
	sc := jetstream.StreamConfig{
		Name:        resultsStream,
		Description: "fofinats: results on their way to clients",
		Subjects:    []string{outPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.MemoryStorage,
		MaxAge:      resultsMaxAge,
		Duplicates:  duplicateWindow,
		Replicas:    cfg.replicas,
	}
	err := withTimeout(ctx, cfg, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, sc)
		if err == nil {
			return nil
		}
		s, lookupErr := js.Stream(ctx, resultsStream)
		if lookupErr != nil || s.CachedInfo().Config.Storage == sc.Storage {
			return err
		}
		sc.Storage = s.CachedInfo().Config.Storage
		_, err = js.CreateOrUpdateStream(ctx, sc)
		return err
	})
	if err != nil {
		return fmt.Errorf("fofinats: create stream %s: %w", resultsStream, err)
	}
	return nil
}

// withTimeout runs a request to the server with ctx bounded by the
// configured server timeout.
func withTimeout(ctx context.Context, cfg config, req func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.serverTimeout)
	defer cancel()
	return req(ctx)
}

// ownJetStream makes a JetStream context on js's connection, with js's API
// prefix or domain, for fofinats's requests to the JetStream API, bounded
// by the server timeout. (fofinats publishes inputs and results with a
// publisher of its own, see publish.go, not with js's.)
func ownJetStream(js jetstream.JetStream, cfg config) (jetstream.JetStream, error) {
	opts := []jetstream.JetStreamOpt{jetstream.WithDefaultTimeout(cfg.serverTimeout)}
	o := js.Options()
	switch {
	case o.Domain != "":
		return jetstream.NewWithDomain(js.Conn(), o.Domain, opts...)
	case o.APIPrefix != "":
		return jetstream.NewWithAPIPrefix(js.Conn(), o.APIPrefix, opts...)
	}
	return jetstream.New(js.Conn(), opts...)
}

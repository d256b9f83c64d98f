package fofinats

import "encoding/json"

// Codec encodes the inputs and results of remote calls. Marshal and
// Unmarshal are called from many goroutines at once and must be safe for
// that. Unmarshal receives a pointer to a zero In or Out.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the default [Codec]: encoding/json. Clients and workers written
// in Go with the same types need nothing else; the messages are readable
// with the nats command-line tool.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

package kubereal

import (
	"bytes"
	"encoding/json"
	"sync"

	"k8s.io/apimachinery/pkg/api/resource"
)

func jsonMarshal(v any) ([]byte, error)       { return json.Marshal(v) }
func jsonUnmarshal(b []byte, v any) error     { return json.Unmarshal(b, v) }
func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }

// syncBuffer collects the servers' output, for a failure's message; exec
// copies stdout and stderr from goroutines of its own.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) write(prefix string, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(prefix)
	s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type prefixWriter struct {
	buf    *syncBuffer
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.buf.write(w.prefix, p)
	return len(p), nil
}

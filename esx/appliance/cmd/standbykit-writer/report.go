package main

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"

	"github.com/standbykit/standbykit/esx/appliance"
)

// tracker passes a report through and remembers the event of its last
// complete line, so that the writer adds an error line only when the
// report does not end with a result already.
type tracker struct {
	mu      sync.Mutex
	w       io.Writer
	partial []byte
	last    string
}

func newTracker(w io.Writer) *tracker { return &tracker{w: w} }

func (t *tracker) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.observe(p)
	return t.w.Write(p)
}

// observe follows the lines of p.
func (t *tracker) observe(p []byte) {
	for len(p) > 0 {
		line, rest, found := bytes.Cut(p, []byte{'\n'})
		if !found {
			if len(t.partial) < 1<<16 {
				t.partial = append(t.partial, line...)
			}
			return
		}
		full := append(t.partial, line...)
		t.partial = t.partial[:0]
		var l appliance.ReportLine
		if json.Unmarshal(full, &l) == nil && l.Event != "" {
			t.last = l.Event
		}
		p = rest
	}
}

// ended tells whether the report ends with a result: "done" or "error".
func (t *tracker) ended() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.partial) == 0 && (t.last == "done" || t.last == "error")
}

// lastEvent is the event of the last complete line.
func (t *tracker) lastEvent() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// errorLine is the report line telling that the writer failed.
func errorLine(err error) []byte {
	b, _ := json.Marshal(appliance.ReportLine{Event: "error", OK: false, Error: "standbykit-writer: " + err.Error()})
	return append(b, '\n')
}

package bootcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// qmp is a client of QEMU's machine protocol (QMP) on a unix socket: one
// command at a time, the events QEMU sends in between skipped.
type qmp struct {
	conn net.Conn
	dec  *json.Decoder
}

// qmpBudget bounds what QEMU's monitor may send in one check: answers
// are small, and events few.
const qmpBudget = 64 << 20

// dialQMP connects to QEMU's QMP socket, retrying while QEMU starts
// (until ctx ends or exited is closed), and leaves the capabilities
// negotiation mode.
func dialQMP(ctx context.Context, path string, exited <-chan struct{}) (*qmp, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			q := &qmp{conn: conn, dec: json.NewDecoder(io.LimitReader(conn, qmpBudget))}
			var greeting struct {
				QMP json.RawMessage `json:"QMP"`
			}
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			if err := q.dec.Decode(&greeting); err != nil || greeting.QMP == nil {
				conn.Close()
				return nil, fmt.Errorf("bootcheck: qmp: no greeting from QEMU: %v", err)
			}
			if _, err := q.run(ctx, "qmp_capabilities", nil); err != nil {
				conn.Close()
				return nil, err
			}
			return q, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bootcheck: qmp: %w (last: %v)", ctx.Err(), err)
		case <-exited:
			return nil, errors.New("bootcheck: qmp: QEMU exited before its monitor answered")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// run sends one command and returns its answer.
func (q *qmp) run(ctx context.Context, command string, args any) (json.RawMessage, error) {
	deadline := time.Now().Add(time.Minute)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	q.conn.SetDeadline(deadline)
	// A cancelled context (a stopped program) ends the wait at once.
	stop := context.AfterFunc(ctx, func() { q.conn.SetDeadline(time.Now()) })
	defer stop()
	msg := map[string]any{"execute": command}
	if args != nil {
		msg["arguments"] = args
	}
	if err := json.NewEncoder(q.conn).Encode(msg); err != nil {
		return nil, fmt.Errorf("bootcheck: qmp %s: %w", command, err)
	}
	for {
		var answer struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := q.dec.Decode(&answer); err != nil {
			return nil, fmt.Errorf("bootcheck: qmp %s: %w", command, err)
		}
		switch {
		case answer.Error != nil:
			return nil, fmt.Errorf("bootcheck: qmp %s: %s: %s", command, answer.Error.Class, answer.Error.Desc)
		case answer.Return != nil:
			return answer.Return, nil
		}
		// An event (answer.Event): not the answer.
	}
}

func (q *qmp) Close() error { return q.conn.Close() }

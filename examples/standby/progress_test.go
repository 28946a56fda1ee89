package main

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/bootpoint"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time                { return c.t }
func (c *fakeClock) at(d time.Duration) *fakeClock { c.t = time.Unix(1e9, 0).Add(d); return c }

func TestProgressLines(t *testing.T) {
	var out bytes.Buffer
	clock := &fakeClock{}
	p := &progress{out: &out, now: clock.now}
	feed := func(at time.Duration, e bootpoint.Event) string {
		t.Helper()
		clock.at(at)
		out.Reset()
		p.event(e)
		return out.String()
	}
	const gib = 1 << 30
	up := func(done int64) bootpoint.Event {
		return bootpoint.Event{Sequence: 0, Step: bootpoint.StepUpload, Disk: 0, Done: done, Total: 10 * gib}
	}

	// A short transfer says nothing; the boot point's line comes.
	require.Empty(t, feed(0, bootpoint.Event{Sequence: 0, Step: "inspect"}))
	require.Empty(t, feed(0, bootpoint.Event{Step: bootpoint.StepStream, Done: 0, Total: 8 << 20}))
	require.Empty(t, feed(900*time.Millisecond, bootpoint.Event{Step: bootpoint.StepStream, Done: 8 << 20, Total: 8 << 20}))

	// A long one: quiet for its first 2 s, then a line every 5 s with
	// the bytes done, rate and time left, and a last line at its end.
	require.Empty(t, feed(1*time.Second, up(0)))
	require.Empty(t, feed(2*time.Second, up(100<<20)))
	require.Equal(t, "     point 0: uploading disk 0: 300.0 MiB of 10.0 GiB (2%), 100.0 MiB/s, 1m39s left\n", feed(4*time.Second, up(300<<20)))
	require.Empty(t, feed(8*time.Second, up(700<<20)))
	require.Equal(t, "     point 0: uploading disk 0: 1.0 GiB of 10.0 GiB (10%), 113.8 MiB/s, 1m21s left\n", feed(10*time.Second, up(gib)))
	require.Equal(t, "     point 0: uploading disk 0: done, 10.0 GiB in 1m30s, 113.8 MiB/s\n", feed(91*time.Second, up(10*gib)))
	require.Equal(t, "     point 0 → boot point 0: 8.0 MiB written in 1m31s\n", feed(91*time.Second, bootpoint.Event{Sequence: 0, Step: "done", Bytes: 8 << 20}))

	// Verification of a boot point, and a payload.
	require.Empty(t, feed(100*time.Second, bootpoint.Event{Sequence: 4, Step: bootpoint.StepVerify, Disk: 1, Total: gib}))
	require.Equal(t, "     boot point 4: verifying disk 1: 512.0 MiB of 1.0 GiB (50%), 170.7 MiB/s, 3s left\n",
		feed(103*time.Second, bootpoint.Event{Sequence: 4, Step: bootpoint.StepVerify, Disk: 1, Done: gib / 2, Total: gib}))
	require.Empty(t, feed(110*time.Second, bootpoint.Event{Sequence: 5, Step: bootpoint.StepPayload, Disk: -1, Total: gib}))
	require.Equal(t, "     point 5: building the payload: 100.0 MiB of 1.0 GiB (9%), 33.3 MiB/s, 27.7s left\n",
		feed(113*time.Second, bootpoint.Event{Sequence: 5, Step: bootpoint.StepPayload, Disk: -1, Done: 100 << 20, Total: gib}))
}

// In a manager pass, lines name the task, and only long transfers print.
func TestTaskProgressLines(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	clock := (&fakeClock{}).at(0)
	p := &progress{out: &out, now: clock.now, task: "db01", mu: &mu}
	p.event(bootpoint.Event{Sequence: 3, Step: "inspect"})
	p.event(bootpoint.Event{Sequence: 3, Step: bootpoint.StepStream, Total: 1 << 30})
	clock.at(3 * time.Second)
	p.event(bootpoint.Event{Sequence: 3, Step: bootpoint.StepStream, Done: 300 << 20, Total: 1 << 30})
	p.event(bootpoint.Event{Sequence: 3, Step: "done", Bytes: 1 << 30})
	require.Equal(t, "db01: point 3: encoding disk 0: 300.0 MiB of 1.0 GiB (29%), 100.0 MiB/s, 7.2s left\n", out.String())
}

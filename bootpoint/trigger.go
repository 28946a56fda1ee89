package bootpoint

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TriggerKind says when a task makes boot points.
type TriggerKind string

const (
	// Immediately: as soon as a new point is complete.
	Immediately TriggerKind = "immediately"
	// Daily: once a day at a given time, if new points arrived.
	Daily TriggerKind = "daily"
	// EveryN: when N new points have accumulated.
	EveryN TriggerKind = "every"
)

// Trigger decides when new points become a boot point. When it fires, one
// boot point covers every point that arrived since the last one (the
// newest point, with the changes of all of them).
type Trigger struct {
	Kind TriggerKind
	// At is the time of day for Daily, as an offset from midnight in
	// Location (nil: local time).
	At       time.Duration
	Location *time.Location
	// N is the count for EveryN.
	N int
}

// ParseTrigger reads "immediately", "daily@03:00" or "every:3".
func ParseTrigger(s string) (Trigger, error) {
	switch {
	case s == "" || s == string(Immediately):
		return Trigger{Kind: Immediately}, nil
	case strings.HasPrefix(s, "daily@"):
		hm := strings.TrimPrefix(s, "daily@")
		t, err := time.Parse("15:04", hm)
		if err != nil {
			return Trigger{}, fmt.Errorf("trigger %q: time of day must be HH:MM", s)
		}
		return Trigger{Kind: Daily, At: time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute}, nil
	case strings.HasPrefix(s, "every:"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "every:"))
		if err != nil || n < 1 {
			return Trigger{}, fmt.Errorf("trigger %q: want every:N with N ≥ 1", s)
		}
		return Trigger{Kind: EveryN, N: n}, nil
	}
	return Trigger{}, fmt.Errorf("trigger %q: want immediately, daily@HH:MM or every:N", s)
}

func (t Trigger) String() string {
	switch t.Kind {
	case Daily:
		return fmt.Sprintf("daily@%02d:%02d", int(t.At.Hours()), int(t.At.Minutes())%60)
	case EveryN:
		return fmt.Sprintf("every:%d", t.N)
	}
	return string(Immediately)
}

func (t Trigger) loc() *time.Location {
	if t.Location == nil {
		return time.Local
	}
	return t.Location
}

// lastSlot is the most recent daily time at or before now.
func (t Trigger) lastSlot(now time.Time) time.Time {
	now = now.In(t.loc())
	y, m, d := now.Date()
	slot := time.Date(y, m, d, 0, 0, 0, 0, t.loc()).Add(t.At)
	if slot.After(now) {
		slot = time.Date(y, m, d-1, 0, 0, 0, 0, t.loc()).Add(t.At)
	}
	return slot
}

// Due reports whether a boot point should be made now, given how many
// complete points have no boot point yet and when the task last made one
// (zero if never).
func (t Trigger) Due(now, lastRun time.Time, waiting int) bool {
	if waiting < 1 {
		return false
	}
	switch t.Kind {
	case Daily:
		return lastRun.Before(t.lastSlot(now))
	case EveryN:
		return waiting >= t.N
	}
	return true
}

// Next returns when the trigger may fire next, for a status display: the
// zero time means "when a new point arrives" (or when N have).
func (t Trigger) Next(now, lastRun time.Time) time.Time {
	if t.Kind != Daily {
		return time.Time{}
	}
	slot := t.lastSlot(now)
	if lastRun.Before(slot) {
		return slot
	}
	return slot.AddDate(0, 0, 1)
}

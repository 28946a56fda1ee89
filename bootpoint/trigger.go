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

// slot is the daily time on the day of t (in the trigger's location).
// It is built from the wall clock, not as midnight plus an offset, so
// that a day with a daylight-saving change keeps its time of day.
func (t Trigger) slot(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, int(t.At/time.Hour), int(t.At%time.Hour/time.Minute), 0, 0, t.loc())
}

// lastSlot is the most recent daily time at or before now.
func (t Trigger) lastSlot(now time.Time) time.Time {
	y, m, d := now.In(t.loc()).Date()
	if slot := t.slot(y, m, d); !slot.After(now) {
		return slot
	}
	return t.slot(y, m, d-1)
}

// Due reports whether a boot point should be made now, given how many
// complete points have no boot point yet and when the task was last up to
// date (zero if never): when it last made a boot point, or last found no
// point waiting. A daily trigger fires once per slot: at the slot, or
// later when the manager was not running then (or the run failed), but not
// for a point that arrives after a slot the task was up to date at.
func (t Trigger) Due(now, upToDate time.Time, waiting int) bool {
	if waiting < 1 {
		return false
	}
	switch t.Kind {
	case Daily:
		return upToDate.Before(t.lastSlot(now))
	case EveryN:
		return waiting >= t.N
	}
	return true
}

// Next returns the earliest time, at or after now, at which the trigger
// may fire, given when the task was last up to date (as for Due): for a
// daily trigger, now when a slot since then has not been served, else the
// next slot. The zero time means "when a new point arrives" (or when N
// have), for the other kinds.
func (t Trigger) Next(now, upToDate time.Time) time.Time {
	if t.Kind != Daily {
		return time.Time{}
	}
	if upToDate.Before(t.lastSlot(now)) {
		return now
	}
	return t.nextSlot(now)
}

// nextSlot is the first daily time after now.
func (t Trigger) nextSlot(now time.Time) time.Time {
	y, m, d := t.lastSlot(now).Date()
	return t.slot(y, m, d+1)
}

// NextRun says when the task will next try to make a boot point, for a
// status display, from its state st at now: its retry time when it is
// failing, now when it is due (it runs at the next pass), else the next
// slot of a daily trigger. The zero time means it waits for new points
// (for an immediate or every:N trigger) or for an operator (paused,
// diverged, failed over).
func (t *Task) NextRun(now time.Time, st TaskState) time.Time {
	switch {
	case st.Paused || st.Diverged || st.FailedOver:
		return time.Time{}
	case st.Failing() && st.RetryAt.After(now):
		return st.RetryAt
	case t.Trigger.Due(now, st.UpToDate(), st.Waiting):
		return now
	case t.Trigger.Kind == Daily:
		return t.Trigger.nextSlot(now)
	}
	return time.Time{}
}

package bootpoint

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTriggers(t *testing.T) {
	utc := time.UTC
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, utc)
		require.NoError(t, err)
		return v
	}
	daily := Trigger{Kind: Daily, At: 3 * time.Hour, Location: utc}
	cases := []struct {
		name    string
		tr      Trigger
		now     string
		lastRun string
		waiting int
		due     bool
	}{
		{"immediately, nothing new", Trigger{Kind: Immediately}, "2026-11-24 10:00", "", 0, false},
		{"immediately, one new", Trigger{Kind: Immediately}, "2026-11-24 10:00", "2026-11-24 09:59", 1, true},
		{"daily before the hour", daily, "2026-11-24 02:59", "2026-11-23 03:00", 3, false},
		{"daily at the hour", daily, "2026-11-24 03:00", "2026-11-23 03:00", 3, true},
		{"daily later that day, already ran", daily, "2026-11-24 15:00", "2026-11-24 03:01", 2, false},
		{"daily, missed yesterday's slot, catch up now", daily, "2026-11-24 01:00", "2026-11-22 03:05", 1, true},
		{"daily, nothing new", daily, "2026-11-24 03:00", "2026-11-23 03:00", 0, false},
		{"daily, never ran", daily, "2026-11-24 03:30", "", 1, true},
		{"every 3, two waiting", Trigger{Kind: EveryN, N: 3}, "2026-11-24 03:00", "", 2, false},
		{"every 3, three waiting", Trigger{Kind: EveryN, N: 3}, "2026-11-24 03:00", "", 3, true},
	}
	for _, c := range cases {
		var last time.Time
		if c.lastRun != "" {
			last = at(c.lastRun)
		}
		require.Equal(t, c.due, c.tr.Due(at(c.now), last, c.waiting), c.name)
	}
	// A slot served (a boot point made, or nothing waiting): the next one.
	require.Equal(t, at("2026-11-25 03:00"), daily.Next(at("2026-11-24 15:00"), at("2026-11-24 03:01")))
	require.Equal(t, at("2026-11-24 03:00"), daily.Next(at("2026-11-24 02:59"), at("2026-11-23 03:01")))
	// A slot not served (missed, or its run failed): now.
	require.Equal(t, at("2026-11-24 15:00"), daily.Next(at("2026-11-24 15:00"), at("2026-11-23 03:01")))
	require.Equal(t, at("2026-11-24 15:00"), daily.Next(at("2026-11-24 15:00"), time.Time{}))
	require.True(t, Trigger{Kind: EveryN, N: 2}.Next(at("2026-11-24 15:00"), time.Time{}).IsZero())
}

// NextRun is what `standby status` shows as NEXT RUN.
func TestNextRun(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, time.UTC)
		require.NoError(t, err)
		return v
	}
	daily := &Task{Trigger: Trigger{Kind: Daily, At: 3 * time.Hour, Location: time.UTC}}
	now := at("2026-11-29 10:00")
	cases := []struct {
		name string
		task *Task
		st   TaskState
		want time.Time // zero: waits for points or an operator
	}{
		{"daily, never ran, nothing waiting", daily, TaskState{}, at("2026-11-30 03:00")},
		{"daily, never ran, a point waiting: the next pass", daily, TaskState{Waiting: 1}, now},
		{"daily, last boot point 11-20, nothing since", daily, TaskState{LastSuccess: at("2026-11-20 03:04")}, at("2026-11-30 03:00")},
		{"daily, last boot point 11-20, a point waiting", daily, TaskState{LastSuccess: at("2026-11-20 03:04"), Waiting: 1}, now},
		{"daily, up to date at today's slot", daily, TaskState{LastSuccess: at("2026-11-20 03:04"), LastIdle: at("2026-11-29 03:00"), Waiting: 1}, at("2026-11-30 03:00")},
		{"daily, failing: its retry", daily, TaskState{Failures: 2, RetryAt: at("2026-11-29 10:02"), Waiting: 1}, at("2026-11-29 10:02")},
		{"daily, failing, retry time passed", daily, TaskState{Failures: 2, RetryAt: at("2026-11-29 09:02"), Waiting: 1}, now},
		{"daily, paused", daily, TaskState{Paused: true, Waiting: 1}, time.Time{}},
		{"daily, diverged", daily, TaskState{Diverged: true, Waiting: 1}, time.Time{}},
		{"immediately, nothing waiting", &Task{Trigger: Trigger{Kind: Immediately}}, TaskState{}, time.Time{}},
		{"immediately, a point waiting", &Task{Trigger: Trigger{Kind: Immediately}}, TaskState{Waiting: 1}, now},
		{"every:3, two waiting", &Task{Trigger: Trigger{Kind: EveryN, N: 3}}, TaskState{Waiting: 2}, time.Time{}},
	}
	for _, c := range cases {
		require.Equal(t, c.want, c.task.NextRun(now, c.st), c.name)
	}
}

// A daily slot keeps its time of day across a daylight-saving change.
func TestDailySlotAcrossDST(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	daily := Trigger{Kind: Daily, At: 3 * time.Hour, Location: berlin}
	// Summer time ends at 03:00 on 2026-10-25: that day has 25 hours.
	for _, now := range []time.Time{
		time.Date(2026, 10, 24, 4, 0, 0, 0, berlin),
		time.Date(2026, 3, 28, 4, 0, 0, 0, berlin), // and 2026-03-29 has 23
	} {
		next := daily.nextSlot(now)
		require.Equal(t, 3, next.Hour(), "next slot after %v", now)
		require.Equal(t, now.Day()+1, next.Day())
		require.Equal(t, next, daily.lastSlot(next.Add(time.Minute)))
	}
}

func TestParseTrigger(t *testing.T) {
	for _, s := range []string{"immediately", "daily@03:00", "daily@23:59", "every:5"} {
		tr, err := ParseTrigger(s)
		require.NoError(t, err)
		require.Equal(t, s, tr.String())
	}
	for _, s := range []string{"daily@25:00", "every:0", "every:x", "sometimes"} {
		_, err := ParseTrigger(s)
		require.Error(t, err, s)
	}
}

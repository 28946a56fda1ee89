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
	require.Equal(t, at("2026-11-25 03:00"), daily.Next(at("2026-11-24 15:00"), at("2026-11-24 03:01")))
	require.Equal(t, at("2026-11-24 03:00"), daily.Next(at("2026-11-24 15:00"), at("2026-11-23 03:01")))
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

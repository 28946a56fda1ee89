package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/internal/cli"
)

// Task states `standby status` shows. Those marked attention make it
// exit with cli.ExitAttention.
const (
	stateOK          = "ok"
	stateNew         = "new"         // no boot point yet
	statePaused      = "paused"      // an operator paused it
	stateInterrupted = "interrupted" // stopped by a shutdown; the next run resumes it
	stateFailing     = "failing"     // attention: its last run failed; retried at nextRetry
	stateDiverged    = "diverged"    // attention: its VM was used; `discard` or `keep`
	stateFailedOver  = "failed-over" // an operator kept the VM running; the task is over
	// attention: a disk was resized; `reseed` (see needsDecision)
	stateNeedsDecision = "needs-decision"
)

// taskState names a task's state and says whether it needs an operator.
func taskState(st bootpoint.TaskState) (name string, attention bool) {
	switch {
	case st.FailedOver:
		return stateFailedOver, false
	case st.Diverged:
		return stateDiverged, true
	case st.NeedsDecision != "":
		return stateNeedsDecision, true
	case st.Failing():
		return stateFailing, true
	case st.Paused:
		return statePaused, false
	case st.Interrupted:
		return stateInterrupted, false
	case st.BootPoints == 0 && st.LastSuccess.IsZero():
		return stateNew, false
	}
	return stateOK, false
}

// statusRow is one task in `standby status --json`: times are RFC 3339,
// durations in seconds, absent times were never (or, for nextRun, depend
// on new points or an operator).
type statusRow struct {
	Task         string `json:"task"`
	VM           string `json:"vm"`
	State        string `json:"state"`
	Attention    bool   `json:"attention"` // failing or waiting for a decision
	Trigger      string `json:"trigger"`
	BootPoints   int    `json:"bootPoints"`
	LastSequence int    `json:"lastSequence"` // -1: no boot point
	Waiting      int    `json:"waiting"`      // complete points without a boot point
	Pending      int    `json:"pending"`      // image files still arriving
	// NextRun: when the task next tries to make a boot point (now: at the
	// next pass).
	NextRun             time.Time `json:"nextRun,omitzero"`
	LastAttempt         time.Time `json:"lastAttempt,omitzero"`
	LastSuccess         time.Time `json:"lastSuccess,omitzero"`
	LastBytes           int64     `json:"lastBytes"`
	LastDurationSeconds float64   `json:"lastDurationSeconds"`
	LastError           string    `json:"lastError,omitempty"`
	NeedsDecision       string    `json:"needsDecision,omitempty"`
	LastFullVerify      time.Time `json:"lastFullVerify,omitzero"`
	LastVerifyError     string    `json:"lastVerifyError,omitempty"`
	// LastBootCheck is the newest boot check's evidence.
	LastBootCheck *bootpoint.BootCheck `json:"lastBootCheck,omitempty"`
	LastFailure   time.Time            `json:"lastFailure,omitzero"`
	Failures      int                  `json:"failures"` // failed runs since the last success
	NextRetry     time.Time            `json:"nextRetry,omitzero"`
}

func statusRows(e *opsEnv, now time.Time) ([]statusRow, error) {
	states, err := e.m.Status()
	if err != nil {
		return nil, err
	}
	var rows []statusRow
	for _, t := range e.m.Tasks {
		st := states[t.Name]
		state, attention := taskState(st)
		row := statusRow{Task: t.Name, VM: t.Standby.VM.Name, State: state, Attention: attention, Trigger: t.Trigger.String(),
			BootPoints: st.BootPoints, LastSequence: st.LastSequence, Waiting: st.Waiting, Pending: st.Pending,
			NextRun: t.NextRun(now, st), LastAttempt: st.LastAttempt, LastSuccess: st.LastSuccess,
			LastBytes: st.LastBytes, LastDurationSeconds: st.LastDuration.Seconds(),
			LastError: st.LastError, LastFailure: st.LastFailure, Failures: st.Failures,
			NeedsDecision: st.NeedsDecision, LastFullVerify: st.LastFullVerify, LastVerifyError: st.LastVerifyError,
			LastBootCheck: lastBootCheck(st)}
		if st.Failing() {
			row.NextRetry = st.RetryAt
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b statusRow) int { return cmp.Compare(a.Task, b.Task) })
	return rows, nil
}

// status prints every task's state; it exits with cli.ExitAttention
// when one needs an operator.
func status(e *opsEnv, asJSON bool) error {
	now := time.Now()
	rows, err := statusRows(e, now)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return err
		}
	} else {
		printStatusTable(e, rows, now)
	}
	for _, r := range rows {
		if r.Attention {
			return &cli.ExitError{Code: cli.ExitAttention}
		}
	}
	return nil
}

func printStatusTable(e *opsEnv, rows []statusRow, now time.Time) {
	tw := tabwriter.NewWriter(e.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tVM\tSTATE\tBOOT POINTS\tLAST POINT\tWAITING\tNEXT RUN\tLAST SUCCESS\tBOOT CHECK\tLAST ERROR")
	for _, r := range rows {
		state := r.State
		if r.Attention {
			state = strings.ToUpper(state)
		}
		last := "-"
		if r.LastSequence >= 0 && r.BootPoints > 0 {
			last = fmt.Sprint(r.LastSequence)
		}
		success := "-"
		if !r.LastSuccess.IsZero() {
			success = fmt.Sprintf("%s (%s, %s)", r.LastSuccess.Local().Format("01-02 15:04"), bytesHuman(r.LastBytes),
				time.Duration(r.LastDurationSeconds*float64(time.Second)).Round(time.Second))
		}
		lastErr := "-"
		if r.LastError != "" {
			lastErr = fmt.Sprintf("%s (%s, %d in a row)", r.LastError, r.LastFailure.Local().Format("01-02 15:04"), r.Failures)
		}
		check := "-"
		if c := r.LastBootCheck; c != nil {
			check = fmt.Sprintf("%d %s", c.Sequence, strings.ToUpper(c.Verdict))
			if c.Verdict == bootpoint.BootPassed {
				check = fmt.Sprintf("%d %s", c.Sequence, c.Verdict)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Task, r.VM, state, r.BootPoints, last, r.Waiting,
			nextRunText(e, r, now), success, check, lastErr)
	}
	tw.Flush()
}

// nextRunText says when a task runs next, in words where there is no
// time to give.
func nextRunText(e *opsEnv, r statusRow, now time.Time) string {
	switch {
	case r.State == statePaused || r.State == stateDiverged || r.State == stateFailedOver:
		return "-"
	case !r.NextRetry.IsZero() && r.NextRetry.After(now):
		return "retry " + r.NextRetry.Local().Format("01-02 15:04")
	case r.NextRun.IsZero():
		t, _ := e.task(r.Task)
		if t != nil && t.Trigger.Kind == bootpoint.EveryN {
			return fmt.Sprintf("at %d new points", t.Trigger.N)
		}
		return "on a new point"
	case !r.NextRun.After(now):
		return "next pass"
	}
	return r.NextRun.Local().Format("01-02 15:04")
}

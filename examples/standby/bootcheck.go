package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/standbykit/standbykit/bootcheck"
	"github.com/standbykit/standbykit/bootpoint"
)

// bootChecks is the manager's boot-check configuration.
func bootChecks(cfg *config) bootpoint.BootChecks {
	// A guest without VMware Tools is judged by its screen, by the rules
	// of package bootcheck with their defaults.
	b := bootpoint.BootChecks{PerHost: cfg.BootChecksPerHost, Judge: bootcheck.Rules{}.JudgePNG}
	if len(cfg.AlertCommand) > 0 {
		b.Alert = bootpoint.CommandAlert(cfg.AlertCommand)
	}
	return b
}

// bootCheck boot-checks a boot point now and prints the verdict; a check
// that did not pass exits with status 1.
func bootCheck(ctx context.Context, e *opsEnv, name string, point int) error {
	t, err := e.standbyVM(ctx, name)
	if err != nil {
		return err
	}
	c, err := e.m.CheckBoot(ctx, name, point)
	if err != nil {
		return fmt.Errorf("%s: boot check of boot point %s: %w", name, pointName(point), err)
	}
	e.printf("%s: boot point %d of %s: %s (%s: %s) in %.0fs\n", name, c.Sequence, t.Standby.VM.Name, verdictWord(c.Verdict), c.Method, c.Detail, c.Duration)
	if c.ScreenshotFile != "" {
		e.printf("%s: screenshot kept in %s\n", name, c.ScreenshotFile)
	}
	if c.Verdict != bootpoint.BootPassed {
		return errors.New("the boot point did not pass its boot check")
	}
	return nil
}

func verdictWord(v string) string {
	if v == bootpoint.BootPassed {
		return "passed"
	}
	return "FAILED (" + v + ")"
}

// failoverPoint is the boot point failover takes when none is named: the
// newest whose boot check passed, when the task has boot checks; else the
// newest. why says which, for the operator.
func (e *opsEnv) failoverPoint(ctx context.Context, name string) (int, string, error) {
	st, err := e.m.Status()
	if err != nil {
		return 0, "", err
	}
	if len(st[name].BootChecks) == 0 {
		return -1, ", the newest (no boot check recorded)", nil
	}
	bp, c, err := e.m.NewestProven(ctx, name)
	switch {
	case errors.Is(err, bootpoint.ErrNotFound):
		return -1, ", the newest: no boot point has passed a boot check", nil
	case err != nil:
		return 0, "", err
	}
	return bp.Meta.Sequence, fmt.Sprintf(", the newest that passed its boot check (%s)", c.At.Local().Format("2006-01-02 15:04")), nil
}

// lastBootCheck is the newest boot check of a task, for status.
func lastBootCheck(st bootpoint.TaskState) *bootpoint.BootCheck {
	if n := len(st.BootChecks); n > 0 {
		c := st.BootChecks[n-1]
		return &c
	}
	return nil
}

// bootCheckDuration reads a boot-check duration setting: "" is the
// default (0), else from 1s to 24h.
func bootCheckDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second || d > 24*time.Hour {
		return 0, errors.New(`want a duration from "1s" to "24h", such as "3m"`)
	}
	return d, nil
}

// bootCheckOptions are a task's boot-check settings (checked by
// loadConfig).
func (tc taskConfig) bootCheckOptions() bootpoint.BootCheckOptions {
	settle, _ := bootCheckDuration(tc.BootCheckSettle)
	wait, _ := bootCheckDuration(tc.BootCheckToolsWait)
	timeout, _ := bootCheckDuration(tc.BootCheckTimeout)
	var poll time.Duration // the default, 5 s
	if settle > 0 {
		poll = min(5*time.Second, max(settle/10, 100*time.Millisecond))
	}
	return bootpoint.BootCheckOptions{Network: tc.BootCheckNetwork, Settle: settle, ToolsWait: wait, Timeout: timeout, Poll: poll}
}

package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/p2v"
)

type runOptions struct {
	images, vm, simDir, passphraseEnv string
}

// runOnce keeps one standby VM from one image set: the boot points the
// set's complete points call for, each verified.
func runOnce(ctx context.Context, out io.Writer, o runOptions) error {
	start := time.Now()
	set, err := aipimage.OpenDir(o.images, &aipimage.OpenOptions{Passphrase: []byte(os.Getenv(o.passphraseEnv))})
	if err != nil {
		return err
	}
	defer set.Close()
	points := set.Points()
	if len(points) == 0 {
		return fmt.Errorf("%s: no complete image yet", o.images)
	}
	if o.vm == "" {
		o.vm = points[0].Machine.Hostname + "-standby"
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tgt, err := connect(ctx, o.simDir, true, logger, out)
	if err != nil {
		return err
	}
	defer tgt.close(context.WithoutCancel(ctx))
	sb := &bootpoint.Standby{Hypervisor: tgt.host, Inspector: p2v.Inspector{}, VM: bootpoint.VMSpec{Name: o.vm},
		Library: "standbykit", Logger: logger, Progress: progressPrinter(out)}
	results, err := sb.Sync(ctx, set)
	if err != nil {
		return err
	}
	// The new boot points that are still there: past the cap, the oldest
	// were consolidated as the newest were made.
	_, bps, err := sb.BootPoints(ctx)
	if err != nil {
		return err
	}
	kept := map[string]bool{}
	for _, bp := range bps {
		kept[bp.Snapshot.ID] = true
	}
	verified := 0
	for _, r := range results {
		if !kept[r.BootPoint.Snapshot.ID] {
			continue
		}
		if err := sb.Verify(ctx, set, r.BootPoint); err != nil {
			return err
		}
		verified++
	}
	fmt.Fprintf(out, "%s: %d boot points (%d new, %d of them verified, %d consolidated since) in %s\n", o.vm, len(bps), len(results),
		verified, len(results)-verified, time.Since(start).Round(time.Millisecond))
	return nil
}

type opsOptions struct {
	cmd, config, task, network, simDir string
	json, withVM                       bool
	watch                              time.Duration
	point                              int
}

// ops runs the manager commands over a configuration file.
func ops(ctx context.Context, out io.Writer, o opsOptions) error {
	cfg, err := loadConfig(o.config)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	simDir := o.simDir
	if !filepath.IsAbs(simDir) {
		simDir = filepath.Join(filepath.Dir(cfg.State), simDir)
	}
	m := &bootpoint.Manager{StatePath: cfg.State, PerHost: cfg.PerHost, Global: cfg.Global, Logger: logger}
	var tgt *target
	needsHost := o.cmd != "status" && o.cmd != "pause" && o.cmd != "resume" && o.cmd != "keep"
	if needsHost {
		tgt, err = connect(ctx, simDir, true, logger, out)
		if err != nil {
			return err
		}
		defer tgt.close(context.WithoutCancel(ctx))
	}
	var progressMu sync.Mutex
	for _, tc := range cfg.Tasks {
		trig, _ := bootpoint.ParseTrigger(tc.Trigger) // checked by loadConfig
		t := &bootpoint.Task{Name: tc.Name, Images: tc.Images, Host: tc.Host, Trigger: trig,
			Standby: &bootpoint.Standby{VM: tc.vmSpec(), MaxBootPoints: tc.MaxBootPoints, Library: "standbykit", Logger: logger,
				Progress:  taskProgress(out, &progressMu, tc.Name),
				Inspector: p2v.Inspector{Controller: p2v.Controller(tc.VM.Controller)}}}
		if tc.PassphraseEnv != "" {
			t.Passphrase = []byte(os.Getenv(tc.PassphraseEnv))
		}
		if tgt != nil {
			t.Standby.Hypervisor = tgt.host
			if t.Host == "" {
				t.Host = tgt.name
			}
		}
		m.Tasks = append(m.Tasks, t)
	}
	switch o.cmd {
	case "status":
		return printStatus(out, m, cfg, o.json)
	case "pause", "resume":
		return m.SetPaused(o.task, o.cmd == "pause")
	case "run-now":
		r, err := m.RunNow(ctx, o.task)
		if err != nil {
			return err
		}
		printResults(out, []bootpoint.TaskResult{r})
		return r.Err
	case "sync":
		for {
			rs, err := m.Tick(ctx)
			if err != nil {
				return err
			}
			printResults(out, rs)
			if o.watch <= 0 {
				return errors.Join(resultErrors(rs)...)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(o.watch):
			}
		}
	case "failover":
		t, err := findTask(m, o.task)
		if err != nil {
			return err
		}
		bp, err := t.Standby.Failover(ctx, o.point, o.network)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s is running from boot point %d (%s)\n", t.Standby.VM.Name, bp.Meta.Sequence, bp.Snapshot.Name)
		return nil
	case "testboot":
		t, err := findTask(m, o.task)
		if err != nil {
			return err
		}
		if err := t.Standby.TestBoot(ctx, o.point, o.network, nil); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: test boot powered on a throwaway clone and removed it; the chain is untouched\n", t.Standby.VM.Name)
		return nil
	case "discard":
		if err := m.Discard(ctx, o.task); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: changes since its current boot point discarded; the task makes boot points again\n", o.task)
		return nil
	case "keep":
		if err := m.KeepFailedOver(o.task); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: its VM is kept as it runs; the task makes no more boot points\n", o.task)
		return nil
	case "delete":
		if err := m.DeleteTask(ctx, o.task, o.withVM); err != nil {
			return err
		}
		if err := removeTask(o.config, o.task); err != nil {
			return fmt.Errorf("task %s deleted, but %s still lists it: %w", o.task, o.config, err)
		}
		what := "its standby VM is kept"
		if o.withVM {
			what = "its standby VM and disks are deleted"
		}
		fmt.Fprintf(out, "task %s deleted from %s; %s\n", o.task, o.config, what)
		return nil
	}
	return fmt.Errorf("unknown command %q", o.cmd)
}

func findTask(m *bootpoint.Manager, name string) (*bootpoint.Task, error) {
	for _, t := range m.Tasks {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("no task %q in the configuration", name)
}

func resultErrors(rs []bootpoint.TaskResult) []error {
	var errs []error
	for _, r := range rs {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("task %s: %w", r.Task, r.Err))
		}
	}
	return errs
}

func printResults(out io.Writer, rs []bootpoint.TaskResult) {
	for _, r := range rs {
		switch {
		case r.Err != nil:
			fmt.Fprintf(out, "%s: FAILED: %v\n", r.Task, r.Err)
		case !r.Ran:
			fmt.Fprintf(out, "%s: not due\n", r.Task)
		default:
			var n int64
			for _, x := range r.Results {
				n += x.Bytes
			}
			fmt.Fprintf(out, "%s: %d boot point(s) made, %s written\n", r.Task, len(r.Results), mib(n))
		}
	}
}

// statusRow is one task in `standby status --json`.
type statusRow struct {
	Task string `json:"task"`
	VM   string `json:"vm"`
	bootpoint.TaskState
	Next time.Time `json:"next,omitzero"`
}

func printStatus(out io.Writer, m *bootpoint.Manager, cfg *config, asJSON bool) error {
	states, err := m.Status()
	if err != nil {
		return err
	}
	var rows []statusRow
	for _, t := range m.Tasks {
		st := states[t.Name]
		row := statusRow{Task: t.Name, VM: t.Standby.VM.Name, TaskState: st}
		if !st.Paused {
			row.Next = t.Trigger.Next(st.LastRun, time.Now())
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b statusRow) int { return cmp.Compare(a.Task, b.Task) })
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tVM\tSTATE\tBOOT POINTS\tLAST POINT\tWAITING\tNEXT RUN\tLAST RUN\tLAST ERROR")
	for _, r := range rows {
		state := "ok"
		switch {
		case r.FailedOver:
			state = "failed-over"
		case r.Diverged:
			state = "DIVERGED"
		case r.Paused:
			state = "paused"
		case r.LastError != "":
			state = "FAILING"
		case r.LastRun.IsZero():
			state = "new"
		}
		last := "-"
		if r.LastSequence >= 0 && r.BootPoints > 0 {
			last = fmt.Sprint(r.LastSequence)
		}
		lastRun := "-"
		if !r.LastRun.IsZero() {
			lastRun = fmt.Sprintf("%s (%s, %s)", r.LastRun.Local().Format("01-02 15:04"), mib(r.LastBytes), r.LastDuration.Round(time.Second))
		}
		next := "-"
		if !r.Next.IsZero() {
			next = r.Next.Local().Format("01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", r.Task, r.VM, state, r.BootPoints, last, r.Waiting, next, lastRun, r.LastError)
	}
	return tw.Flush()
}

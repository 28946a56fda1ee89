package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/internal/cli"
	"github.com/standbykit/standbykit/p2v"
)

// opsNeeds says what a manager command needs besides the configuration.
type opsNeeds int

const (
	opsLocal opsNeeds = 0      // the state file only
	opsHost  opsNeeds = 1 << 0 // a connection to the host
	opsTask  opsNeeds = 1 << 1 // one TASK argument
)

// opsAction is a manager command's work, given the manager built from the
// configuration and its TASK argument ("" for commands without one).
type opsAction func(ctx context.Context, e *opsEnv, task string) error

// managerCmd is the Setup of a manager command: --config (and, for a
// command that reaches the host, --datastore-dir), then the flags setup
// declares; the Action checks the arguments, loads the configuration,
// connects if needed and runs the work setup returned.
func managerCmd(out io.Writer, needs opsNeeds, setup func(fs *flag.FlagSet) opsAction) func(*flag.FlagSet) cli.Action {
	return func(fs *flag.FlagSet) cli.Action {
		configPath := fs.String("config", "standby.json", "task configuration file")
		simDir := "standby-datastore"
		if needs&opsHost != 0 {
			fs.StringVar(&simDir, "datastore-dir", simDir, "the simulator's datastore folder when GOVC_URL is unset (a relative path is in the state file's folder)")
		}
		act := setup(fs)
		return func(ctx context.Context, args []string) error {
			task := ""
			switch {
			case needs&opsTask != 0 && len(args) != 1:
				return cli.Usagef("", "give one task name")
			case needs&opsTask != 0:
				task = args[0]
			case len(args) > 0:
				return cli.Usagef("", "takes no task name (got %q)", args[0])
			}
			e, err := newOpsEnv(out, *configPath)
			if err != nil {
				return err
			}
			if task != "" {
				if _, err := e.task(task); err != nil {
					return err
				}
			}
			if needs&opsHost != 0 {
				if err := e.connect(ctx, simDir); err != nil {
					return err
				}
				defer e.tgt.close(context.WithoutCancel(ctx))
			}
			return act(ctx, e, task)
		}
	}
}

// opsEnv is what a manager command works with.
type opsEnv struct {
	out        io.Writer
	outMu      sync.Mutex // tasks run concurrently
	configPath string
	cfg        *config
	m          *bootpoint.Manager
	logger     *slog.Logger
	tgt        *target
}

func newOpsEnv(out io.Writer, configPath string) (*opsEnv, error) {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, err
	}
	e := &opsEnv{out: out, configPath: configPath, cfg: cfg,
		logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	// The manager's own warnings (a task failed) are what the commands
	// print: only its errors are logged.
	managerLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	e.m = &bootpoint.Manager{StatePath: cfg.State, PerHost: cfg.PerHost, Global: cfg.Global, Logger: managerLog,
		RetryDelay: cfg.retry, MaxRetryDelay: cfg.maxRetry, BootChecks: bootChecks(cfg)}
	for _, tc := range cfg.Tasks {
		trig, _ := bootpoint.ParseTrigger(tc.Trigger) // checked by loadConfig
		every, _ := parseFullVerify(tc.FullVerify)    // checked by loadConfig
		t := &bootpoint.Task{Name: tc.Name, Images: tc.Images, Host: tc.Host, Trigger: trig, FullVerifyEvery: every,
			Passphrase: passphrase(tc.PassphraseEnv),
			Standby: &bootpoint.Standby{VM: tc.vmSpec(), MaxBootPoints: tc.MaxBootPoints, Library: "standbykit", Logger: e.logger,
				Inspector:    p2v.Inspector{Controller: p2v.Controller(tc.VM.Controller)},
				SkipReadBack: tc.VerifyWrites != nil && !*tc.VerifyWrites},
			BootCheck: tc.BootCheck, BootCheckOptions: tc.bootCheckOptions()}
		transfers := taskProgress(e.out, &e.outMu, t.Name)
		t.Standby.Progress = func(ev bootpoint.Event) {
			if ev.Step == "inspect" {
				e.printf("%s: point %d: making its boot point\n", t.Name, ev.Sequence)
			}
			transfers(ev)
		}
		e.m.Tasks = append(e.m.Tasks, t)
	}
	return e, nil
}

// connect opens the host and gives it to every task.
func (e *opsEnv) connect(ctx context.Context, simDir string) error {
	if !filepath.IsAbs(simDir) {
		simDir = filepath.Join(filepath.Dir(e.cfg.State), simDir)
	}
	tgt, err := connect(ctx, simDir, true, e.logger, e.out)
	if err != nil {
		return err
	}
	e.tgt = tgt
	for _, t := range e.m.Tasks {
		t.Standby.Hypervisor = tgt.host
		if t.Host == "" {
			t.Host = tgt.name
		}
	}
	return nil
}

func (e *opsEnv) printf(format string, args ...any) {
	e.outMu.Lock()
	defer e.outMu.Unlock()
	fmt.Fprintf(e.out, format, args...)
}

// standbyVM is the task's VM, or an error saying plainly that it has none
// yet.
func (e *opsEnv) standbyVM(ctx context.Context, name string) (*bootpoint.Task, error) {
	t, err := e.task(name)
	if err != nil {
		return nil, err
	}
	_, err = t.Standby.Hypervisor.FindVM(ctx, t.Standby.VM.Name)
	if errors.Is(err, bootpoint.ErrNotFound) {
		return nil, fmt.Errorf("task %s has no standby VM yet (no VM %s on %s): run `standby sync` first", name, t.Standby.VM.Name, e.tgt.name)
	}
	return t, err
}

func (e *opsEnv) task(name string) (*bootpoint.Task, error) {
	for _, t := range e.m.Tasks {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("no task %q in %s", name, e.configPath)
}

// syncTasks runs one pass over the tasks, or one every watch until the
// context is cancelled. A single pass fails when a task failed or is
// failing (waiting for its retry).
func syncTasks(ctx context.Context, e *opsEnv, watch time.Duration) error {
	for {
		rs, err := e.m.Tick(ctx)
		if err != nil {
			return err
		}
		failing := e.printResults(rs, false)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if watch <= 0 {
			if failing > 0 {
				return &cli.ExitError{Code: cli.ExitFailure, Err: fmt.Errorf("%d of %d tasks failing", failing, len(rs))}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(watch):
		}
	}
}

func runNow(ctx context.Context, e *opsEnv, task string) error {
	r, err := e.m.RunNow(ctx, task)
	if r.Task == "" {
		return err
	}
	e.printResults([]bootpoint.TaskResult{r}, true)
	switch {
	case errors.Is(err, bootpoint.ErrInterrupted):
		return context.Cause(ctx)
	case err != nil:
		return &cli.ExitError{Code: cli.ExitFailure} // printed above
	}
	return nil
}

// printResults prints one line per task of a pass and returns how many
// failed or are failing.
func (e *opsEnv) printResults(rs []bootpoint.TaskResult, forced bool) (failing int) {
	states, _ := e.m.Status()
	for _, r := range rs {
		st := states[r.Task]
		retry := ""
		if st.Failing() && !st.RetryAt.IsZero() {
			retry = "; next try at " + st.RetryAt.Local().Format("15:04:05")
		}
		switch {
		case errors.Is(r.Err, bootpoint.ErrInterrupted):
			e.printf("%s: interrupted: the step in flight was undone; the next run resumes the task\n", r.Task)
		case r.Err != nil:
			failing++
			e.printf("%s: FAILED: %v%s\n", r.Task, r.Err, retry)
		case r.Ran:
			e.printf("%s: %d boot point(s) made, %s\n", r.Task, len(r.Results), writtenSummary(r.Results))
		case st.NeedsDecision != "":
			e.printf("%s: NEEDS DECISION: %s\n", r.Task, st.NeedsDecision)
		case st.Failing():
			failing++
			e.printf("%s: failing (%s)%s\n", r.Task, st.LastError, retry)
		case st.FailedOver:
			e.printf("%s: failed over: no more boot points\n", r.Task)
		case st.Diverged:
			e.printf("%s: DIVERGED: waits for `standby discard` or `standby keep`\n", r.Task)
		case st.Paused:
			e.printf("%s: paused\n", r.Task)
		case forced || st.Waiting == 0:
			e.printf("%s: up to date\n", r.Task)
		default:
			e.printf("%s: not due\n", r.Task)
		}
		for _, c := range r.BootChecks {
			e.printf("%s: boot check of boot point %d: %s (%s: %s)\n", r.Task, c.Sequence, verdictWord(c.Verdict), c.Method, c.Detail)
			if c.Verdict != bootpoint.BootPassed {
				failing++
			}
		}
		if v := r.Verify; v != nil && r.Err == nil {
			e.printf("%s: scheduled full verification of boot point %d: %s read back in %s, identical\n", r.Task, v.BootPoint.Meta.Sequence, bytesHuman(v.Bytes), v.Duration.Round(time.Millisecond))
		}
	}
	return failing
}

func setPaused(paused bool) opsAction {
	return func(ctx context.Context, e *opsEnv, task string) error {
		if err := e.m.SetPaused(task, paused); err != nil {
			return err
		}
		e.printf("%s: %s\n", task, map[bool]string{true: "paused", false: "resumed"}[paused])
		return nil
	}
}

func failover(ctx context.Context, e *opsEnv, name string, point int, network string) error {
	t, err := e.standbyVM(ctx, name)
	if err != nil {
		return err
	}
	why := ""
	if point < 0 {
		if point, why, err = e.failoverPoint(ctx, name); err != nil {
			return err
		}
	}
	bp, err := t.Standby.Failover(ctx, point, network)
	if err != nil {
		return err
	}
	e.printf("%s is running from boot point %d (%s)%s\n", t.Standby.VM.Name, bp.Meta.Sequence, bp.Snapshot.Name, why)
	return nil
}

func testBoot(ctx context.Context, e *opsEnv, name string, point int, network string) error {
	t, err := e.standbyVM(ctx, name)
	if err != nil {
		return err
	}
	if err := t.Standby.TestBoot(ctx, point, network, nil); err != nil {
		return err
	}
	e.printf("%s: test boot powered on a throwaway clone and removed it; the chain is untouched\n", t.Standby.VM.Name)
	return nil
}

func discard(ctx context.Context, e *opsEnv, task string) error {
	if _, err := e.standbyVM(ctx, task); err != nil {
		return err
	}
	if err := e.m.Discard(ctx, task); err != nil {
		return err
	}
	e.printf("%s: changes since its current boot point discarded; the task makes boot points again\n", task)
	return nil
}

func keep(ctx context.Context, e *opsEnv, task string) error {
	if err := e.m.KeepFailedOver(task); err != nil {
		return err
	}
	e.printf("%s: its VM is kept as it runs; the task makes no more boot points\n", task)
	return nil
}

func deleteTask(ctx context.Context, e *opsEnv, task string, withVM bool) error {
	if err := e.m.DeleteTask(ctx, task, withVM); err != nil {
		return err
	}
	if err := removeTask(e.configPath, task); err != nil {
		return fmt.Errorf("task %s deleted, but %s still lists it: %w", task, e.configPath, err)
	}
	what := "its standby VM is kept"
	if withVM {
		what = "its standby VM and disks are deleted"
	}
	e.printf("task %s deleted from %s; %s\n", task, e.configPath, what)
	return nil
}

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
	"strings"
	"time"

	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/p2v"
)

// The commands that check and renew a task's data on the host:
//
//	standby verify --config FILE [--point N] [--full] TASK
//	standby reseed --config FILE TASK

// dataCommand runs verify or reseed.
func dataCommand(ctx context.Context, cmd string, args []string, out io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	config := fs.String("config", "standby.json", "task configuration file")
	simDir := fs.String("datastore-dir", "standby-datastore", "the simulator's datastore folder when GOVC_URL is unset")
	var point int
	var full bool
	if cmd == "verify" {
		fs.IntVar(&point, "point", -1, "boot point sequence (default: the newest)")
		fs.BoolVar(&full, "full", false, "compare every byte of every disk (the disk's size), not only what the boot point wrote")
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("%s needs one task name", cmd)
	}
	name := rest[0]
	cfg, err := loadConfig(*config)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir := *simDir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(filepath.Dir(cfg.State), dir)
	}
	tgt, err := connect(ctx, dir, true, logger, out)
	if err != nil {
		return err
	}
	defer tgt.close(context.WithoutCancel(ctx))
	m := &bootpoint.Manager{StatePath: cfg.State, PerHost: cfg.PerHost, Global: cfg.Global, Logger: logger}
	for _, tc := range cfg.Tasks {
		m.Tasks = append(m.Tasks, taskFromConfig(tc, tgt, logger))
	}
	t, err := findTask(m, name)
	if err != nil {
		return err
	}
	switch cmd {
	case "verify":
		res, err := m.Verify(ctx, name, point, full)
		if err != nil {
			return fmt.Errorf("%s: verifying boot point %s: %w", name, pointName(point), err)
		}
		what := "what it wrote"
		if res.Full {
			what = "every byte"
		}
		fmt.Fprintf(out, "%s: boot point %d of %s verified (%s): %s read back from the host in %s\n", name,
			res.BootPoint.Meta.Sequence, t.Standby.VM.Name, what, mib(res.Bytes), res.Duration.Round(time.Millisecond))
		return nil
	case "reseed":
		res, err := m.Reseed(ctx, name)
		if err != nil {
			return err
		}
		if res.BootPoint.Snapshot.ID == "" {
			fmt.Fprintf(out, "%s: an interrupted reseed is complete: %s is the new standby\n", name, t.Standby.VM.Name)
			return nil
		}
		fmt.Fprintf(out, "%s: reseeded: %s was made anew from point %d (%s written and read back); the old VM and its boot points are deleted\n",
			name, t.Standby.VM.Name, res.BootPoint.Meta.Sequence, mib(res.Bytes))
		return nil
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func pointName(p int) string {
	if p < 0 {
		return "(newest)"
	}
	return fmt.Sprint(p)
}

// taskFromConfig makes the manager's task of one configured task on the
// target (nil for commands that do not reach the host).
func taskFromConfig(tc taskConfig, tgt *target, logger *slog.Logger) *bootpoint.Task {
	trig, _ := bootpoint.ParseTrigger(tc.Trigger) // checked by loadConfig
	every, _ := parseFullVerify(tc.FullVerify)    // checked by loadConfig
	t := &bootpoint.Task{Name: tc.Name, Images: tc.Images, Host: tc.Host, Trigger: trig, FullVerifyEvery: every,
		Standby: &bootpoint.Standby{VM: tc.vmSpec(), MaxBootPoints: tc.MaxBootPoints, Library: "standbykit", Logger: logger,
			Inspector:    p2v.Inspector{Controller: p2v.Controller(tc.VM.Controller)},
			SkipReadBack: tc.VerifyWrites != nil && !*tc.VerifyWrites}}
	if tc.PassphraseEnv != "" {
		t.Passphrase = []byte(os.Getenv(tc.PassphraseEnv))
	}
	if tgt != nil {
		t.Standby.Hypervisor = tgt.host
		if t.Host == "" {
			t.Host = tgt.name
		}
	}
	return t
}

// parseFullVerify reads a task's fullVerify setting: how often its newest
// boot point is compared byte for byte with its point.
func parseFullVerify(s string) (time.Duration, error) {
	switch strings.TrimSpace(s) {
	case "", "never":
		return 0, nil
	case "daily":
		return 24 * time.Hour, nil
	case "weekly":
		return 7 * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Hour {
		return 0, errors.New(`fullVerify: want "never", "daily", "weekly" or a duration of at least 1h such as "72h"`)
	}
	return d, nil
}

// writtenSummary says what boot points wrote and how much of it was read
// back from the host.
func writtenSummary(rs []bootpoint.Result) string {
	var written, read int64
	for _, r := range rs {
		written += r.Bytes
		read += r.ReadBack
	}
	if read == written {
		return mib(written) + " written and read back"
	}
	if read == 0 {
		return mib(written) + " written (not read back: verifyWrites is off)"
	}
	return fmt.Sprintf("%s written, %s read back", mib(written), mib(read))
}

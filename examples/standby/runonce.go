package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
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
	set, err := aipimage.OpenDir(o.images, &aipimage.OpenOptions{Passphrase: passphrase(o.passphraseEnv)})
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

// passphrase reads a set's passphrase from the environment variable env;
// nil when it is unset or empty.
func passphrase(env string) []byte {
	if p := os.Getenv(env); p != "" {
		return []byte(p)
	}
	return nil
}

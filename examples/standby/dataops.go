package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/standbykit/standbykit/bootpoint"
)

// The commands that check and renew a task's data on the host:
//
//	standby verify [--config FILE] [--point N] [--full] TASK
//	standby reseed [--config FILE] TASK

// verifyTask reads a boot point back from the host and compares it with
// its point: what it wrote, or with full every byte.
func verifyTask(ctx context.Context, e *opsEnv, name string, point int, full bool) error {
	t, err := e.standbyVM(ctx, name)
	if err != nil {
		return err
	}
	res, err := e.m.Verify(ctx, name, point, full)
	if err != nil {
		return fmt.Errorf("%s: verifying boot point %s: %w", name, pointName(point), err)
	}
	what := "what it wrote"
	if res.Full {
		what = "every byte"
	}
	e.printf("%s: boot point %d of %s verified (%s): %s read back from the host in %s\n", name,
		res.BootPoint.Meta.Sequence, t.Standby.VM.Name, what, bytesHuman(res.Bytes), res.Duration.Round(time.Millisecond))
	return nil
}

// reseedTask builds a new standby for a task whose disks were resized.
func reseedTask(ctx context.Context, e *opsEnv, name string) error {
	t, err := e.task(name)
	if err != nil {
		return err
	}
	res, err := e.m.Reseed(ctx, name)
	if err != nil {
		return err
	}
	if res.BootPoint.Snapshot.ID == "" {
		e.printf("%s: an interrupted reseed is complete: %s is the new standby\n", name, t.Standby.VM.Name)
		return nil
	}
	e.printf("%s: reseeded: %s was made anew from point %d (%s written and read back); the old VM and its boot points are deleted\n",
		name, t.Standby.VM.Name, res.BootPoint.Meta.Sequence, bytesHuman(res.Bytes))
	return nil
}

func pointName(p int) string {
	if p < 0 {
		return "(newest)"
	}
	return fmt.Sprint(p)
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
		return bytesHuman(written) + " written and read back"
	}
	if read == 0 {
		return bytesHuman(written) + " written (not read back: verifyWrites is off)"
	}
	return fmt.Sprintf("%s written, %s read back", bytesHuman(written), bytesHuman(read))
}

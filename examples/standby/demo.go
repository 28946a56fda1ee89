package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/bootpoint"
	"github.com/standbykit/standbykit/internal/sample"
	"github.com/standbykit/standbykit/p2v"
)

type demoOptions struct {
	dir          string
	keep         bool
	incrementals int
}

// demo builds a sample image set, keeps a standby VM from it on the
// target, verifies every boot point and prints the status.
func demo(ctx context.Context, out io.Writer, o demoOptions) error {
	start := time.Now()
	dir := o.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "standbykit-demo-")
		if err != nil {
			return err
		}
		dir = tmp
		if !o.keep {
			defer os.RemoveAll(dir)
		}
	}
	images := filepath.Join(dir, "images")
	fmt.Fprintf(out, "StandbyKit demo\n\n1. Building a sample image set in %s\n", images)
	s, err := sample.Write(ctx, images, sample.Options{Incrementals: o.incrementals})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   %d points of host %s, one %d MiB disk\n\n", len(s.Points), s.Points[0].Machine.Hostname, s.Points[0].Disks[0].Size>>20)

	fmt.Fprintln(out, "2. Opening and verifying the image chain")
	set, err := aipimage.OpenDir(images, nil)
	if err != nil {
		return err
	}
	defer set.Close()
	if err := set.Verify(ctx, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "   %d points, every checksum good\n", len(set.Points()))
	if p, err := set.Point(len(set.Points()) - 1); err == nil {
		if plan, err := (p2v.Inspector{}).Inspect(ctx, p); err == nil {
			fmt.Fprintf(out, "   P2V plan of the newest point: firmware %s, %d patches", plan.Firmware, len(plan.Patches))
			for _, w := range plan.Warnings {
				fmt.Fprintf(out, "; %s", w)
			}
			fmt.Fprintln(out)
		}
	}
	fmt.Fprintln(out)

	fmt.Fprintln(out, "3. Connecting to ESXi")
	logger := slog.New(slog.DiscardHandler)
	tgt, err := connect(ctx, filepath.Join(dir, "datastore"), false, logger, out)
	if err != nil {
		return err
	}
	defer tgt.close(context.WithoutCancel(ctx))
	vmName := s.Points[0].Machine.Hostname + "-standby"
	sb := &bootpoint.Standby{
		Hypervisor: tgt.host,
		Inspector:  p2v.Inspector{},
		VM:         bootpoint.VMSpec{Name: vmName},
		Library:    "standbykit demo",
		Logger:     logger,
		Progress:   progressPrinter(out),
	}
	fmt.Fprintf(out, "\n4. Standby VM %s: one boot point per point\n", vmName)
	fmt.Fprintln(out, "   (the first imported through NFC; each later one carried by a payload disk to the writer")
	fmt.Fprintln(out, "   appliance, which writes it into the delta the host made at the last snapshot, then a snapshot)")
	results, err := sb.Sync(ctx, set)
	if err != nil {
		return err
	}
	var written int64
	for _, r := range results {
		written += r.Bytes
	}

	fmt.Fprintln(out, "\n5. Verifying every boot point: the disk chain read back from the datastore")
	fmt.Fprintln(out, "   must equal the image point (with its P2V patches)")
	_, bps, err := sb.BootPoints(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   BOOT POINT\tSNAPSHOT\tDELTA\tVERIFIED")
	for i, bp := range bps {
		verdict := "identical"
		if err := sb.Verify(ctx, set, bp); err != nil {
			tw.Flush()
			return fmt.Errorf("boot point %d: %w", bp.Meta.Sequence, err)
		}
		delta := "-"
		if i < len(results) {
			delta = mib(results[i].Bytes)
		}
		fmt.Fprintf(tw, "   %d\t%s\t%s\t%s\n", bp.Meta.Sequence, bp.Snapshot.Name, delta, verdict)
	}
	tw.Flush()

	fmt.Fprintln(out, "\n6. Status")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   VM\tHOST\tBOOT POINTS\tLAST POINT\tWRITTEN\tDURATION")
	last := bps[len(bps)-1].Meta
	fmt.Fprintf(tw, "   %s\t%s\t%d\t%d (%s)\t%s\t%s\n", vmName, tgt.name, len(bps), last.Sequence,
		last.PointTime.Format("2006-01-02 15:04"), mib(written), time.Since(start).Round(time.Millisecond))
	tw.Flush()
	fmt.Fprintln(out, "\nOn a disaster: revert to any boot point and power on (see `standby failover`).")
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// progressPrinter prints one line per boot point made.
func progressPrinter(out io.Writer) func(bootpoint.Event) {
	var started time.Time
	return func(e bootpoint.Event) {
		switch e.Step {
		case "inspect":
			started = time.Now()
		case "done":
			fmt.Fprintf(out, "   point %d → boot point %d: %s written in %s\n", e.Sequence, e.Sequence, mib(e.Bytes), time.Since(started).Round(time.Millisecond))
		}
	}
}

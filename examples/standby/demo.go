package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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

// demoVM is one sample server kept as a standby VM by the demo.
type demoVM struct {
	system  sample.System
	set     *aipimage.ImageSet
	sb      *bootpoint.Standby
	written int64
	bps     int
	last    bootpoint.Metadata
}

// demo writes the image sets of two sample servers, a Linux and a
// Windows one, keeps a standby VM of each on the target, verifies every
// boot point and shows what P2V changed on each.
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
	fmt.Fprintf(out, "StandbyKit demo: two physical servers backed up every night, kept as standby VMs\n\n")
	fmt.Fprintf(out, "1. Sample image sets in %s (a full image, then one incremental a night)\n", images)
	var vms []*demoVM
	defer func() {
		for _, v := range vms {
			v.set.Close()
		}
	}()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, sys := range sample.Systems() {
		s, err := sample.Write(ctx, filepath.Join(images, string(sys)), sample.Options{System: sys, Incrementals: o.incrementals})
		if err != nil {
			return err
		}
		set, err := aipimage.OpenDir(s.Dir, nil)
		if err != nil {
			return err
		}
		vms = append(vms, &demoVM{system: sys, set: set})
		if err := set.Verify(ctx, nil); err != nil {
			return err
		}
		m := s.Points[0].Machine
		fmt.Fprintf(tw, "   %s\t%s\t%d points, one %d MiB disk, every checksum good\n", m.Hostname, m.OSHint, len(s.Points), s.Points[0].Disks[0].Size>>20)
	}
	tw.Flush()
	fmt.Fprintln(out, "   Each night changes files: logs and a database on web01; the event log, a ledger and")
	fmt.Fprintln(out, "   the registry on fs01.")

	fmt.Fprintln(out, "\n2. Connecting to ESXi")
	logger := slog.New(slog.DiscardHandler)
	tgt, err := connect(ctx, filepath.Join(dir, "datastore"), false, logger, out)
	if err != nil {
		return err
	}
	defer tgt.close(context.WithoutCancel(ctx))

	for i, v := range vms {
		if err := v.keep(ctx, out, i+3, tgt, logger); err != nil {
			return err
		}
	}

	fmt.Fprintf(out, "\n%d. Status\n", len(vms)+3)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   VM\tHOST\tBOOT POINTS\tLAST POINT\tWRITTEN")
	for _, v := range vms {
		fmt.Fprintf(tw, "   %s\t%s\t%d\t%d (%s)\t%s\n", v.sb.VM.Name, tgt.name, v.bps, v.last.Sequence,
			v.last.PointTime.Format("2006-01-02 15:04"), bytesHuman(v.written))
	}
	tw.Flush()
	fmt.Fprintf(out, "\nDone in %s. On a disaster: revert a standby VM to any boot point and power it on\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprintln(out, "(see `standby failover`); the source servers were never touched.")
	return nil
}

// keep plans, makes and verifies the boot points of one sample server,
// as step n of the demo.
func (v *demoVM) keep(ctx context.Context, out io.Writer, n int, tgt *target, logger *slog.Logger) error {
	points := v.set.Points()
	machine := points[0].Machine
	fmt.Fprintf(out, "\n%d. %s (%s)\n", n, machine.Hostname, machine.OSHint)
	newest, err := v.set.Point(len(points) - 1)
	if err != nil {
		return err
	}
	plan, err := p2v.Inspector{}.Inspect(ctx, newest)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "   P2V plan, from an offline look at the newest point's disk:")
	printPlan(out, plan)

	v.sb = &bootpoint.Standby{
		Hypervisor: tgt.host,
		Inspector:  p2v.Inspector{},
		VM:         bootpoint.VMSpec{Name: machine.Hostname + "-standby"},
		Library:    "standbykit demo",
		Logger:     logger,
		Progress:   progressPrinter(out),
	}
	fmt.Fprintf(out, "   Standby VM %s, one boot point per point: the first imported through NFC, each later\n", v.sb.VM.Name)
	fmt.Fprintln(out, "   one carried by a payload disk to the writer appliance, which writes it into the delta the")
	fmt.Fprintln(out, "   host made at the last snapshot; then a snapshot. Every point gets its P2V patches.")
	results, err := v.sb.Sync(ctx, v.set)
	if err != nil {
		return err
	}
	for _, r := range results {
		v.written += r.Bytes
	}

	fmt.Fprintln(out, "   Every boot point read back from the datastore, compared with its image point ⊕ its patches:")
	vm, bps, err := v.sb.BootPoints(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "     BOOT POINT\tSNAPSHOT\tDELTA\tPATCHES\tVERIFIED")
	for i, bp := range bps {
		p, err := v.set.Point(pointIndex(points, bp.Meta.PointID))
		if err != nil {
			return err
		}
		plan, err := p2v.Inspector{}.Inspect(ctx, p)
		if err != nil {
			return err
		}
		if err := v.sb.Verify(ctx, v.set, bp); err != nil {
			tw.Flush()
			return fmt.Errorf("boot point %d: %w", bp.Meta.Sequence, err)
		}
		delta := "-"
		if i < len(results) {
			delta = bytesHuman(results[i].Bytes)
		}
		fmt.Fprintf(tw, "     %d\t%s\t%s\t%d\tidentical\n", bp.Meta.Sequence, bp.Snapshot.Name, delta, len(plan.Patches))
	}
	tw.Flush()
	v.bps = len(bps)
	last := bps[len(bps)-1]
	v.last = last.Meta
	return v.showExcerpts(ctx, out, newest, vm, last)
}

// printPlan prints the plan's hardware and every patch, grouped by
// reason.
func printPlan(out io.Writer, plan *p2v.Plan) {
	fmt.Fprintf(out, "     firmware %s, guest %s, controller %s\n", plan.Firmware, plan.GuestID, plan.Controller)
	var reasons []string
	byReason := map[string][]p2v.Patch{}
	for _, p := range plan.Patches {
		if _, ok := byReason[p.Why]; !ok {
			reasons = append(reasons, p.Why)
		}
		byReason[p.Why] = append(byReason[p.Why], p)
	}
	fmt.Fprintf(out, "     %d patches, in place, for %d reasons:\n", len(plan.Patches), len(reasons))
	for _, why := range reasons {
		var at []string
		for _, p := range byReason[why] {
			at = append(at, fmt.Sprintf("%d bytes at disk %d offset %#x", len(p.Data), p.Disk, p.Offset))
		}
		fmt.Fprintf(out, "     - %s\n         (%s)\n", why, strings.Join(at, ", "))
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(out, "     warning: %s\n", w)
	}
}

// showExcerpts prints the lines P2V changed: as the newest image point
// holds them, and as the newest boot point's disk on the datastore does.
func (v *demoVM) showExcerpts(ctx context.Context, out io.Writer, point aipimage.Point, vm bootpoint.VM, bp bootpoint.BootPoint) error {
	src, err := point.Disk(0)
	if err != nil {
		return err
	}
	before, err := v.system.Excerpts(src, src.Size())
	if err != nil {
		return err
	}
	disk, err := v.sb.Hypervisor.OpenDisk(ctx, vm, bp.Snapshot, 0)
	if err != nil {
		return err
	}
	defer disk.Close()
	after, err := v.system.Excerpts(disk, disk.Size())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   Before (image point %d) and after (boot point %d's disk, read from the datastore):\n", point.Info().Sequence, bp.Meta.Sequence)
	for i := range before {
		fmt.Fprintf(out, "     %s\n       before: %s\n       after:  %s\n", before[i].Where, before[i].Text, after[i].Text)
	}
	return nil
}

// pointIndex is the index of the point of that ID, or -1.
func pointIndex(points []aipimage.PointInfo, id string) int {
	for k, p := range points {
		if p.PointID == id {
			return k
		}
	}
	return -1
}

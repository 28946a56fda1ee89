// Command standby keeps standby VMs from disk-image backups.
//
//	standby demo [--dir DIR] [--keep]
//
// demo builds a sample image set (a 64 MiB disk with a partition table, a
// full image and six incrementals), opens it as StandbyKit's pipeline does
// and verifies every point against the data it was made from.
//
// The ESXi stage (standby VM, boot points as snapshots, on govmomi's
// embedded simulator when GOVC_URL is unset) is not built yet; the demo
// says so when it reaches it.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"text/tabwriter"
	"time"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/internal/sample"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "standby:", err)
		os.Exit(1)
	}
}

const usage = "usage: standby demo [--dir DIR] [--keep]"

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "demo" {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", "", "folder for the sample image set (default: a temporary folder)")
	keep := fs.Bool("keep", false, "keep the sample image set afterwards")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	return demo(ctx, out, *dir, *keep)
}

func demo(ctx context.Context, out io.Writer, dir string, keep bool) error {
	start := time.Now()
	if dir == "" {
		tmp, err := os.MkdirTemp("", "standbykit-demo-")
		if err != nil {
			return err
		}
		dir = tmp
		if !keep {
			defer os.RemoveAll(dir)
		}
	}
	fmt.Fprintf(out, "StandbyKit demo\n\n1. Building a sample image set in %s\n", dir)
	s, err := sample.Write(ctx, dir, sample.Options{})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   %d points of host %s, one %d MiB disk\n\n", len(s.Points), s.Points[0].Machine.Hostname, s.Points[0].Disks[0].Size>>20)

	fmt.Fprintln(out, "2. Opening and verifying the image chain")
	set, err := aipimage.OpenDir(dir, nil)
	if err != nil {
		return err
	}
	defer set.Close()
	if err := set.Verify(ctx, nil); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   POINT\tTIME\tCHANGED\tFILE\tCONTENT")
	for k, info := range set.Points() {
		p, err := set.Point(k)
		if err != nil {
			return err
		}
		disk, err := p.Disk(0)
		if err != nil {
			return err
		}
		h := sha256.New()
		if _, err := io.CopyBuffer(h, io.NewSectionReader(disk, 0, disk.Size()), make([]byte, 1<<20)); err != nil {
			return err
		}
		verdict := "matches source"
		if !bytes.Equal(h.Sum(nil), s.Digests[k][:]) {
			verdict = "DIFFERS FROM SOURCE"
			err = fmt.Errorf("point %d does not match its source data", k)
		}
		changed, cerr := p.Changed(0)
		if cerr != nil {
			return cerr
		}
		var n int64
		for _, e := range changed {
			n += e.Len
		}
		st, _ := os.Stat(info.File)
		fmt.Fprintf(tw, "   %d\t%s\t%.1f MiB\t%.1f MiB\t%s\n", info.Sequence, info.Time.Format("2006-01-02 15:04"),
			float64(n)/(1<<20), float64(st.Size())/(1<<20), verdict)
		if err != nil {
			tw.Flush()
			return err
		}
	}
	tw.Flush()

	fmt.Fprintln(out, "\n3. Standby VM on ESXi: not built yet (base VMDK, boot-point deltas and the")
	fmt.Fprintln(out, "   govmomi simulator target come with the vmdk and pipeline work).")
	fmt.Fprintf(out, "\nDone in %s.\n", time.Since(start).Round(time.Millisecond))
	return nil
}

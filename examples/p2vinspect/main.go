// Command p2vinspect prints the P2V plan StandbyKit would apply to a
// machine: boot firmware, ESXi guest id, virtual disk controller, the
// byte patches that make the guest boot on it, and warnings.
//
//	p2vinspect DISK.raw [DISK2.raw …]            raw disk images, boot disk first
//	p2vinspect --images DIR [--point N] [--json]  a point of an image set (default: the newest)
//
// It reads only what it needs and writes nothing.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/p2v"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "p2vinspect:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("p2vinspect", flag.ContinueOnError)
	fs.SetOutput(out)
	images := fs.String("images", "", "folder of an image set")
	point := fs.Int("point", -1, "point of the image set (default: the newest)")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var plan *p2v.Plan
	var err error
	switch {
	case *images != "":
		plan, err = inspectPoint(ctx, *images, *point)
	case fs.NArg() > 0:
		plan, err = inspectFiles(ctx, fs.Args())
	default:
		return errors.New("usage: p2vinspect DISK.raw … | p2vinspect --images DIR [--point N]")
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	}
	fmt.Fprintf(out, "firmware:   %s\nguest:      %s\ncontroller: %s\n", plan.Firmware, orDash(plan.GuestID), orDash(string(plan.Controller)))
	if len(plan.Patches) > 0 {
		fmt.Fprintln(out, "patches:")
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  DISK\tOFFSET\tBYTES\tWHY")
		for _, p := range plan.Patches {
			fmt.Fprintf(tw, "  %d\t%d\t%d\t%s\n", p.Disk, p.Offset, len(p.Data), p.Why)
		}
		tw.Flush()
	}
	for _, w := range plan.Warnings {
		fmt.Fprintln(out, "warning:", w)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func inspectPoint(ctx context.Context, dir string, k int) (*p2v.Plan, error) {
	set, err := aipimage.OpenDir(dir, &aipimage.OpenOptions{Passphrase: []byte(os.Getenv("STANDBYKIT_PASSPHRASE"))})
	if err != nil {
		return nil, err
	}
	defer set.Close()
	if k < 0 {
		k = len(set.Points()) - 1
	}
	if k < 0 || k >= len(set.Points()) {
		return nil, fmt.Errorf("%s has %d points, not point %d", dir, len(set.Points()), k)
	}
	p, err := set.Point(k)
	if err != nil {
		return nil, err
	}
	return p2v.Inspector{}.Inspect(ctx, p)
}

type fileDisk struct {
	*os.File
	size int64
}

func (f fileDisk) Size() int64 { return f.size }

func inspectFiles(ctx context.Context, paths []string) (*p2v.Plan, error) {
	var disks []p2v.Disk
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		disks = append(disks, fileDisk{f, st.Size()})
	}
	return p2v.Inspector{}.InspectDisks(ctx, disks)
}

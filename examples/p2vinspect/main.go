// Command p2vinspect prints the P2V plan StandbyKit would apply to a
// machine: boot firmware, ESXi guest id, virtual disk controller, the
// byte patches that make the guest boot on it, and warnings.
//
//	p2vinspect [--json] DISK.raw [DISK2.raw …]        raw disk images, boot disk first
//	p2vinspect --images DIR [--point N] [--json]      a point of an image set (default: the newest)
//
// It reads only what it needs and writes nothing. Flags may come before
// or after the disk files; -h, --help or help prints the usage. Exit
// status: 0 success, 1 failure, 2 wrong command line.
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
	"github.com/standbykit/standbykit/internal/cli"
	"github.com/standbykit/standbykit/p2v"
)

func main() {
	cli.Main("p2vinspect", func(ctx context.Context, args []string) error { return run(ctx, args, os.Stdout) })
}

const usage = `usage: p2vinspect [--json] DISK.raw [DISK2.raw …]     raw disk images, boot disk first
       p2vinspect --images DIR [--point N] [--json]   a point of an image set

p2vinspect prints the P2V plan StandbyKit would apply to a machine: boot
firmware, ESXi guest id, virtual disk controller, the byte patches that make
the guest boot on it, and warnings. It reads only what it needs and writes
nothing. Encrypted sets: set STANDBYKIT_PASSPHRASE.`

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("p2vinspect", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	images := fs.String("images", "", "folder of an image set")
	point := fs.Int("point", -1, "point of the image set (default: the newest)")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	if len(args) == 1 && args[0] == "help" {
		args = []string{"-h"}
	}
	disks, err := cli.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(out, usage)
		cli.PrintFlags(out, fs)
		return nil
	}
	if err != nil {
		return cli.Usagef("p2vinspect", "%v", err)
	}
	var plan *p2v.Plan
	switch {
	case *images != "" && len(disks) > 0:
		return cli.Usagef("p2vinspect", "give raw disk files or --images, not both")
	case *images != "":
		plan, err = inspectPoint(ctx, *images, *point)
	case len(disks) > 0:
		plan, err = inspectFiles(ctx, disks)
	default:
		return cli.Usagef("p2vinspect", "give raw disk files or --images DIR")
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

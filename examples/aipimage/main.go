// Command aipimage creates, inspects, verifies and extracts StandbyKit
// image sets.
//
//	aipimage create --out DIR --host NAME [--firmware bios|efi] [--os HINT] [--block-size N] disk.raw...
//	aipimage create --out DIR --parent FILE [--resized] disk.raw...   (incremental: compared with the parent point)
//	aipimage info DIR|FILE
//	aipimage verify DIR|FILE
//	aipimage extract [--point K] [--disk D] --out FILE DIR|FILE
//
// A full image written into a folder that holds a set starts a new chain
// of that set (an "active full"); --resized says the disks were grown or
// shrunk since the parent point, which create refuses otherwise.
//
// Flags may come before or after the arguments; `aipimage help COMMAND`
// or `aipimage COMMAND -h` lists a command's flags. Encrypted sets take
// their passphrase from $STANDBYKIT_PASSPHRASE. Exit status: 0 success, 1
// failure, 2 wrong command line, 130/143 stopped by SIGINT/SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/standbykit/standbykit/aipimage"
	"github.com/standbykit/standbykit/internal/cli"
)

func main() {
	cli.Main("aipimage", func(ctx context.Context, args []string) error { return run(ctx, args, os.Stdout, os.Stderr) })
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	p := &cli.Program{
		Name:  "aipimage",
		About: "aipimage creates, inspects, verifies and extracts StandbyKit image sets.",
		Commands: []cli.Command{
			{Name: "create", Args: "disk.raw...", Summary: "write a full image (--host) or an incremental (--parent) of raw disks",
				Setup: func(fs *flag.FlagSet) cli.Action { return createCmd(fs, stdout, stderr) }},
			{Name: "info", Args: "DIR|FILE", Summary: "describe a set and its points",
				Setup: func(*flag.FlagSet) cli.Action {
					return oneArg("DIR|FILE", func(ctx context.Context, path string) error { return info(path, stdout) })
				}},
			{Name: "verify", Args: "DIR|FILE", Summary: "check every block of every point",
				Setup: func(*flag.FlagSet) cli.Action {
					return oneArg("DIR|FILE", func(ctx context.Context, path string) error { return verify(ctx, path, stdout, stderr) })
				}},
			{Name: "extract", Args: "DIR|FILE", Summary: "write one disk of one point as a sparse raw file",
				Setup: func(fs *flag.FlagSet) cli.Action { return extractCmd(fs, stdout) }},
		},
		Notes:  "Encrypted sets: set STANDBYKIT_PASSPHRASE.\nExit status: 0 success, 1 failure, 2 wrong command line, 130/143 stopped by SIGINT/SIGTERM.",
		Stdout: stdout,
	}
	return p.Run(ctx, args)
}

// oneArg is the Action of a command taking one positional argument.
func oneArg(what string, f func(ctx context.Context, arg string) error) cli.Action {
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return cli.Usagef("", "give one %s", what)
		}
		return f(ctx, args[0])
	}
}

func passphrase() []byte {
	if p := os.Getenv("STANDBYKIT_PASSPHRASE"); p != "" {
		return []byte(p)
	}
	return nil
}

func createCmd(fs *flag.FlagSet, stdout, stderr io.Writer) cli.Action {
	out := fs.String("out", ".", "folder of the image set")
	parent := fs.String("parent", "", "image file of the parent point (makes an incremental)")
	host := fs.String("host", "", "host name of the machine (full image)")
	osHint := fs.String("os", "", "operating system hint (full image)")
	firmware := fs.String("firmware", "", "boot firmware of the machine, bios or efi (full image; default: unknown, P2V reads it from the disks)")
	blockSize := fs.Int("block-size", 0, "block size in bytes (full image; default 64 KiB)")
	resized := fs.Bool("resized", false, "incremental: the disks were grown or shrunk since the parent point")
	return func(ctx context.Context, args []string) error {
		if len(args) == 0 {
			return cli.Usagef("", "no raw disk files given")
		}
		fw, err := aipimage.ParseFirmware(*firmware)
		if err != nil {
			return cli.Usagef("", "--firmware %q: want bios or efi", *firmware)
		}
		if *resized && *parent == "" {
			return cli.Usagef("", "--resized describes an incremental (--parent)")
		}
		if *parent != "" && (*host != "" || *osHint != "" || *firmware != "" || *blockSize != 0) {
			return cli.Usagef("", "--host, --os, --firmware and --block-size describe a full image: an incremental (--parent) takes them from its parent")
		}
		return create(ctx, stdout, stderr, createOptions{out: *out, parent: *parent, blockSize: *blockSize, resized: *resized,
			machine: aipimage.Machine{Hostname: *host, OSHint: *osHint, Firmware: fw}}, args)
	}
}

type createOptions struct {
	out, parent string
	blockSize   int
	resized     bool
	machine     aipimage.Machine
}

func create(ctx context.Context, stdout, stderr io.Writer, o createOptions, disks []string) error {
	var sources []aipimage.DiskSource
	for _, name := range disks {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		sources = append(sources, aipimage.DiskSource{Info: aipimage.DiskInfo{Size: st.Size(), SectorSize: 512, Label: filepath.Base(name)}, Content: f})
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	opts := &aipimage.WriterOptions{BlockSize: o.blockSize, Passphrase: passphrase(), Progress: progressPrinter(stderr), Resized: o.resized}
	start := time.Now()
	var written aipimage.PointInfo
	var err error
	if o.parent == "" {
		written, err = createFull(ctx, o.out, o.machine, sources, opts)
	} else {
		written, err = createIncremental(ctx, o.parent, o.out, sources, opts)
	}
	if re := (*aipimage.ResizeError)(nil); errors.As(err, &re) && re.Disk < len(disks) {
		return fmt.Errorf("%w: if disk %d (%s) was grown or shrunk, say so with --resized", err, re.Disk, disks[re.Disk])
	}
	if err != nil {
		return err
	}
	st, err := os.Stat(written.File)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: point %d of set %s, %s in %s\n", written.File, written.Sequence, written.SetID,
		human(st.Size()), time.Since(start).Round(time.Millisecond))
	return nil
}

// createFull writes a full image into out: a new set, or a new chain of
// the set out holds (the same machine's "active full").
func createFull(ctx context.Context, out string, machine aipimage.Machine, sources []aipimage.DiskSource, opts *aipimage.WriterOptions) (aipimage.PointInfo, error) {
	existing, _ := filepath.Glob(filepath.Join(out, "*"+aipimage.FileExt))
	if len(existing) == 0 {
		opts.SetID = aipimage.NewID()
		path := filepath.Join(out, aipimage.FileName(aipimage.PointInfo{SetID: opts.SetID, Machine: machine}))
		return aipimage.WriteFull(ctx, path, machine, sources, opts)
	}
	set, err := aipimage.OpenDir(out, &aipimage.OpenOptions{Passphrase: opts.Passphrase})
	if err != nil {
		return aipimage.PointInfo{}, fmt.Errorf("%s holds image files that do not open as a set, so a full image would not join it: %w", out, err)
	}
	defer set.Close()
	points := set.Points()
	if len(points) == 0 {
		return aipimage.PointInfo{}, fmt.Errorf("%s holds only files still arriving: write the new full image once they are complete", out)
	}
	newest := points[len(points)-1]
	if machine.Hostname == "" {
		machine.Hostname = newest.Machine.Hostname
	}
	if machine.Hostname != newest.Machine.Hostname {
		return aipimage.PointInfo{}, fmt.Errorf("%s holds the image set of host %q, not %q: write another machine's images to another folder", out, newest.Machine.Hostname, machine.Hostname)
	}
	if machine.OSHint == "" {
		machine.OSHint = newest.Machine.OSHint
	}
	if machine.Firmware == "" {
		machine.Firmware = newest.Machine.Firmware
	}
	return aipimage.WriteFullAfter(ctx, set, out, machine, sources, opts)
}

// createIncremental writes the point after parentFile, comparing the new
// disks with the parent point's content as read through its folder's set.
func createIncremental(ctx context.Context, parentFile, out string, sources []aipimage.DiskSource, opts *aipimage.WriterOptions) (aipimage.PointInfo, error) {
	set, err := aipimage.OpenDir(filepath.Dir(parentFile), &aipimage.OpenOptions{Passphrase: opts.Passphrase})
	if err != nil {
		return aipimage.PointInfo{}, err
	}
	defer set.Close()
	k, err := set.IndexOf(parentFile)
	if err != nil {
		return aipimage.PointInfo{}, err
	}
	return aipimage.WriteIncrementalAfter(ctx, set, k, out, sources, opts)
}

func progressPrinter(w io.Writer) func(aipimage.WriteProgress) {
	last := time.Now()
	return func(p aipimage.WriteProgress) {
		if time.Since(last) < time.Second && p.Done != p.Total {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "\rdisk %d: %s / %s", p.Disk, human(p.Done), human(p.Total))
		if p.Done == p.Total {
			fmt.Fprintln(w)
		}
	}
}

// openSet opens a folder, or the folder of a file.
func openSet(path string) (*aipimage.ImageSet, error) {
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		path = filepath.Dir(path)
	}
	return aipimage.OpenDir(path, &aipimage.OpenOptions{Passphrase: passphrase()})
}

func info(path string, stdout io.Writer) error {
	set, err := openSet(path)
	if err != nil {
		return err
	}
	defer set.Close()
	points := set.Points()
	if len(points) == 0 {
		for _, p := range set.Pending() {
			fmt.Fprintf(stdout, "pending: %s (%v)\n", p.File, p.Reason)
		}
		return fmt.Errorf("%s: no complete point yet", path)
	}
	newest := points[len(points)-1]
	fmt.Fprintf(stdout, "set %s: host %q, os %q, firmware %s, block size %s%s, %d chain(s)\n", newest.SetID, newest.Machine.Hostname,
		newest.Machine.OSHint, orDash(string(newest.Machine.Firmware)), human(int64(newest.BlockSize)), map[bool]string{true: ", encrypted"}[newest.Encryption != nil],
		len(set.Chains()))
	for d, disk := range newest.Disks {
		fmt.Fprintf(stdout, "disk %d: %s (%d bytes), %d-byte sectors %s\n", d, human(disk.Size), disk.Size, disk.SectorSize, disk.Label)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tCHANGED\tFILE SIZE\tFILE\tNOTE")
	for k, p := range points {
		pt, err := set.Point(k)
		if err != nil {
			return err
		}
		var changed int64
		for d := range p.Disks {
			exts, err := pt.Changed(d)
			if err != nil {
				return err
			}
			for _, e := range exts {
				changed += e.Len
			}
		}
		st, _ := os.Stat(p.File)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", p.Sequence, p.Time.Local().Format("2006-01-02 15:04:05"), human(changed), human(st.Size()), filepath.Base(p.File), pointNote(k, p))
	}
	for _, p := range set.Pending() {
		fmt.Fprintf(tw, "-\tpending\t\t\t%s (%v)\n", filepath.Base(p.File), p.Reason)
	}
	return tw.Flush()
}

// pointNote marks the points where a chain starts or a disk was resized.
func pointNote(k int, p aipimage.PointInfo) string {
	var notes []string
	if p.Full() && k > 0 {
		notes = append(notes, "new full image: a new chain starts")
	}
	for _, r := range p.Resized {
		notes = append(notes, fmt.Sprintf("disk %d resized from %s to %s", r.Disk, human(r.From), human(p.Disks[r.Disk].Size)))
	}
	return strings.Join(notes, "; ")
}

func verify(ctx context.Context, path string, stdout, stderr io.Writer) error {
	set, err := openSet(path)
	if err != nil {
		return err
	}
	defer set.Close()
	start := time.Now()
	last := time.Now()
	err = set.Verify(ctx, func(p aipimage.VerifyProgress) {
		if time.Since(last) > time.Second {
			last = time.Now()
			fmt.Fprintf(stderr, "\r%s: %d/%d blocks", filepath.Base(p.File), p.Done, p.Total)
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ok: %d points verified in %s", len(set.Points()), time.Since(start).Round(time.Millisecond))
	if n := len(set.Pending()); n > 0 {
		fmt.Fprintf(stdout, "; %d files pending (still arriving)", n)
	}
	fmt.Fprintln(stdout)
	return nil
}

func extractCmd(fs *flag.FlagSet, stdout io.Writer) cli.Action {
	point := fs.Int("point", -1, "point index (0 = full image; default: the newest)")
	disk := fs.Int("disk", 0, "disk index")
	out := fs.String("out", "", "raw file to write (required)")
	return oneArg("DIR|FILE", func(ctx context.Context, path string) error {
		if *out == "" {
			return cli.Usagef("", "--out is required")
		}
		return extract(ctx, stdout, path, *point, *disk, *out)
	})
}

func extract(ctx context.Context, stdout io.Writer, path string, point, disk int, out string) error {
	set, err := openSet(path)
	if err != nil {
		return err
	}
	defer set.Close()
	k := point
	if k < 0 {
		k = len(set.Points()) - 1
	}
	p, err := set.Point(k)
	if err != nil {
		return err
	}
	src, err := p.Disk(disk)
	if err != nil {
		return err
	}
	n, err := aipimage.ExtractSparse(ctx, out, src)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: point %d disk %d, %s\n", out, p.Info().Sequence, disk, human(n))
	return nil
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

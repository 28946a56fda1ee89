// Command aipimage creates, inspects, verifies and extracts StandbyKit
// image sets.
//
//	aipimage create --out DIR --host NAME [--firmware bios|uefi] [--os HINT] disk0.raw [disk1.raw ...]
//	aipimage create --out DIR --parent FILE disk0.raw [...]   (incremental: compared with the parent point)
//	aipimage info DIR|FILE
//	aipimage verify DIR|FILE
//	aipimage extract --point K --disk D --out FILE DIR
//
// Encrypted sets take their passphrase from $STANDBYKIT_PASSPHRASE.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/standbykit/standbykit/aipimage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "aipimage:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  aipimage create --out DIR --host NAME [--firmware bios|uefi] [--os HINT] [--block-size N] disk.raw...
  aipimage create --out DIR --parent FILE disk.raw...
  aipimage info DIR|FILE
  aipimage verify DIR|FILE
  aipimage extract --point K --disk D --out FILE DIR
encrypted sets: set STANDBYKIT_PASSPHRASE`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "create":
		return create(ctx, args, stdout, stderr)
	case "info":
		return info(args, stdout)
	case "verify":
		return verify(ctx, args, stdout, stderr)
	case "extract":
		return extract(ctx, args, stdout)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func passphrase() []byte {
	if p := os.Getenv("STANDBYKIT_PASSPHRASE"); p != "" {
		return []byte(p)
	}
	return nil
}

func create(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", ".", "folder of the image set")
	parent := fs.String("parent", "", "image file of the parent point (makes an incremental)")
	host := fs.String("host", "", "host name of the machine (full image)")
	osHint := fs.String("os", "", "operating system hint (full image)")
	firmware := fs.String("firmware", "", "bios or uefi (full image)")
	blockSize := fs.Int("block-size", 0, "block size in bytes (full image; default 64 KiB)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("create: no raw disk files given")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	var sources []aipimage.DiskSource
	for _, name := range fs.Args() {
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
	opts := &aipimage.WriterOptions{BlockSize: *blockSize, Passphrase: passphrase(), Progress: progressPrinter(stderr)}
	start := time.Now()
	var written aipimage.PointInfo
	var err error
	if *parent == "" {
		opts.SetID = aipimage.NewID()
		machine := aipimage.Machine{Hostname: *host, OSHint: *osHint, Firmware: aipimage.Firmware(*firmware)}
		path := filepath.Join(*out, aipimage.FileName(aipimage.PointInfo{SetID: opts.SetID, Machine: machine}))
		written, err = aipimage.WriteFull(ctx, path, machine, sources, opts)
	} else {
		written, err = createIncremental(ctx, *parent, *out, sources, opts)
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
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		path = filepath.Dir(path)
	}
	return aipimage.OpenDir(path, &aipimage.OpenOptions{Passphrase: passphrase()})
}

func info(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("info: give one folder or image file")
	}
	set, err := openSet(args[0])
	if err != nil {
		return err
	}
	defer set.Close()
	points := set.Points()
	first := points[0]
	fmt.Fprintf(stdout, "set %s: host %q, os %q, firmware %s, block size %s%s\n", first.SetID, first.Machine.Hostname,
		first.Machine.OSHint, orDash(string(first.Machine.Firmware)), human(int64(first.BlockSize)), map[bool]string{true: ", encrypted"}[first.Encryption != nil])
	for d, disk := range first.Disks {
		fmt.Fprintf(stdout, "disk %d: %s (%d bytes), %d-byte sectors %s\n", d, human(disk.Size), disk.Size, disk.SectorSize, disk.Label)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tCHANGED\tFILE SIZE\tFILE")
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
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", p.Sequence, p.Time.Local().Format("2006-01-02 15:04:05"), human(changed), human(st.Size()), filepath.Base(p.File))
	}
	for _, p := range set.Pending() {
		fmt.Fprintf(tw, "-\tpending\t\t\t%s (%v)\n", filepath.Base(p.File), p.Reason)
	}
	return tw.Flush()
}

func verify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return errors.New("verify: give one folder or image file")
	}
	set, err := openSet(args[0])
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

func extract(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("extract", flag.ContinueOnError)
	point := fs.Int("point", -1, "point index (0 = full image; default the newest)")
	disk := fs.Int("disk", 0, "disk index")
	out := fs.String("out", "", "raw file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *out == "" {
		return errors.New("extract: usage: extract --point K --disk D --out FILE DIR")
	}
	set, err := openSet(fs.Arg(0))
	if err != nil {
		return err
	}
	defer set.Close()
	k := *point
	if k < 0 {
		k = len(set.Points()) - 1
	}
	p, err := set.Point(k)
	if err != nil {
		return err
	}
	src, err := p.Disk(*disk)
	if err != nil {
		return err
	}
	n, err := aipimage.ExtractSparse(ctx, *out, src)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: point %d disk %d, %s\n", *out, p.Info().Sequence, *disk, human(n))
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

// Command appliancebench measures the writer appliance's data path in
// MB/s of changed data (bytes of the changed ranges, 10⁶ per MB):
//
//  1. payload building: appliance.WritePayload of the changes (mixed:
//     about half in 64 KiB extents scattered over the disk, half in
//     extents of 4 to 32 MiB; content random) over a sparse target disk
//     image, written to a file; the best of the rounds, with and without
//     the file's fsync;
//  2. the appliance writing them under qemu-system-x86_64: the appliance
//     built as build-appliance builds it (image.Build, Debian's kernel
//     package as the boot test gets it), booted with the payload and the
//     target attached on the chosen controller, from QEMU's start to its
//     exit after the appliance powered itself off, minus the same for a
//     payload of one 64 KiB extent (the boot overhead: kernel, modules,
//     waiting for the disks to settle, power-off); the best of the rounds
//     for each. The console's lines, stamped as they come, also give the
//     time to the kernel starting /init and Apply's own time inside the
//     VM (from the writer naming the payload disk to it reporting the
//     records written). After each boot the report must tell a success
//     for the payload, and the target is compared byte for byte with
//     what it should be over every changed range and every range the
//     image has allocated (the rest is holes: zeros, as before).
//
// QEMU runs under TCG, an emulated CPU (qemu64: no SSE4.2, so CRC-32C
// runs in software), as in the boot test: the appliance's figure is far
// below what it does on a real host, and is for comparing runs and
// controllers here, not for predicting ESXi.
//
// Run: go run ./internal/bench/appliancebench [--changed 256MiB] [--disk 2GiB]
// [--controller pvscsi|lsisas|ahci|nvme] [--rounds 2] [--dir /tmp]
//
// The kernel package is the one named by STANDBYKIT_KERNEL_DEB, else the
// release's current one from apt-get download, kept in
// ~/.cache/standbykit (image.DefaultCacheDir).
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/standbykit/standbykit/esx/appliance"
	"github.com/standbykit/standbykit/esx/appliance/image"
	"github.com/standbykit/standbykit/internal/appliancevm"
	"github.com/standbykit/standbykit/internal/extent"
)

const block = 64 << 10

func main() {
	changed, disk := size(256<<20), size(2<<30)
	flag.Var(&changed, "changed", "changed data (a multiple of 64 KiB: 256MiB, 1GiB, 65536)")
	flag.Var(&disk, "disk", "target disk size (a multiple of 1 MiB, at least 4× --changed)")
	controller := flag.String("controller", "pvscsi", "disk controller: "+strings.Join(appliancevm.Controllers(), ", "))
	rounds := flag.Int("rounds", 2, "runs of each measure (the best is reported)")
	dir := flag.String("dir", os.TempDir(), "folder for the disk images and the payload")
	flag.Parse()
	if err := run(int64(changed), int64(disk), *controller, *rounds, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "appliancebench:", err)
		os.Exit(1)
	}
}

// size is a byte count flag: a number with an optional KiB, MiB, GiB or
// TiB suffix.
type size int64

func (s *size) String() string { return formatSize(int64(*s)) }

func (s *size) Set(v string) error {
	mult := int64(1)
	for i, suf := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if n, ok := strings.CutSuffix(v, suf); ok {
			v, mult = n, 1<<(10*(i+1))
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return fmt.Errorf("want a positive size such as 256MiB")
	}
	*s = size(n * mult)
	return nil
}

func formatSize(n int64) string {
	for _, u := range []struct {
		suf   string
		shift uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.suf)
		}
	}
	return strconv.FormatInt(n, 10)
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }

func run(changed, disk int64, controller string, rounds int, dir string) error {
	switch {
	case changed%block != 0:
		return fmt.Errorf("--changed %d is not a multiple of 64 KiB", changed)
	case disk%(1<<20) != 0:
		return fmt.Errorf("--disk %d is not a multiple of 1 MiB", disk)
	case changed > disk/4:
		return fmt.Errorf("--changed %s is more than a quarter of --disk %s", formatSize(changed), formatSize(disk))
	case rounds < 1:
		return fmt.Errorf("--rounds %d: want at least 1", rounds)
	}
	if _, err := appliancevm.Attach(controller); err != nil {
		return err
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return errors.New("qemu-system-x86_64 missing (apt-get install qemu-system-x86)")
	}
	qemuVersion := "?"
	if out, err := exec.Command(qemu, "--version").Output(); err == nil {
		qemuVersion, _, _ = strings.Cut(string(out), "\n")
	}
	work, err := os.MkdirTemp(dir, "appliancebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	ctx := context.Background()

	// The changes: the source image is the target as it should be after
	// the write (its content, random, inside the changed ranges; holes
	// elsewhere), the target an empty sparse image.
	r := rand.New(rand.NewPCG(7, uint64(changed)))
	exts, err := layout(r, changed, disk)
	if err != nil {
		return err
	}
	small := 0
	for _, e := range exts {
		if e.Len == block {
			small++
		}
	}
	source, target := filepath.Join(work, "source.img"), filepath.Join(work, "target.img")
	if err := writeSource(source, disk, exts); err != nil {
		return err
	}
	if err := emptyImage(target, disk); err != nil {
		return err
	}
	src, err := os.Open(source)
	if err != nil {
		return err
	}
	defer src.Close()

	cmdline := fmt.Sprintf("go run ./internal/bench/appliancebench --changed %s --disk %s --controller %s --rounds %d",
		formatSize(changed), formatSize(disk), controller, rounds)
	fmt.Println("command:", cmdline)
	fmt.Printf("%s of changes in %d extents (%d × 64 KiB, %d of 4–32 MiB) on a %s sparse disk; GOMAXPROCS=%d; %s\n",
		formatSize(changed), len(exts), small, len(exts)-small, formatSize(disk), runtime.GOMAXPROCS(0), qemuVersion)

	// 1. Payload building.
	payload := filepath.Join(work, "payload.img")
	var build, buildSync []time.Duration
	var id string
	var payloadLen int64
	for range rounds {
		base, err := os.Open(target)
		if err != nil {
			return err
		}
		tg := appliance.Target{Capacity: disk, Extents: exts, Source: src, Base: base}
		f, err := os.Create(payload)
		if err != nil {
			base.Close()
			return err
		}
		start := time.Now()
		id, payloadLen, err = appliance.WritePayload(ctx, f, []appliance.Target{tg})
		build = append(build, time.Since(start))
		if err == nil {
			err = f.Sync()
			buildSync = append(buildSync, time.Since(start))
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		base.Close()
		if err != nil {
			return fmt.Errorf("payload: %w", err)
		}
	}

	// The boot overhead's payload: one 64 KiB extent on a target of the
	// same size.
	tinyExts := []extent.Extent{{Off: disk / 2, Len: block}}
	tinySource, tinyTarget, tinyPayload := filepath.Join(work, "tiny-source.img"), filepath.Join(work, "tiny-target.img"), filepath.Join(work, "tiny-payload.img")
	if err := writeSource(tinySource, disk, tinyExts); err != nil {
		return err
	}
	if err := emptyImage(tinyTarget, disk); err != nil {
		return err
	}
	tinyID, err := buildPayload(ctx, tinyPayload, disk, tinyExts, tinySource, tinyTarget)
	if err != nil {
		return err
	}

	// 2. The appliance under QEMU.
	fmt.Printf("building the appliance (image.Build) … ")
	start := time.Now()
	res, err := image.Build(ctx, image.Options{Out: filepath.Join(work, "appliance"), KernelDeb: os.Getenv("STANDBYKIT_KERNEL_DEB")})
	if err != nil {
		return err
	}
	fmt.Printf("kernel %s, %d modules, %v\n", res.Kernel.Version, len(res.Modules), time.Since(start).Round(time.Millisecond))

	boot := func(name, target, payload, id string, exts []extent.Extent, source string, timeout time.Duration) (*appliancevm.Run, error) {
		if err := emptyImage(target, disk); err != nil {
			return nil, err
		}
		dir := filepath.Join(work, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		args, err := appliancevm.Attach(controller, target, payload)
		if err != nil {
			return nil, err
		}
		vm, err := appliancevm.Boot(ctx, appliancevm.VM{Qemu: qemu, Vmlinuz: res.Vmlinuz, Initrd: res.Initrd,
			Dir: dir, Args: args, Timeout: timeout})
		if err != nil {
			return nil, fmt.Errorf("%s boot: %w", name, err)
		}
		if err := appliance.ReadReport(bytes.NewReader(vm.Report), id); err != nil {
			return nil, fmt.Errorf("%s boot: %w\nconsole:\n%s", name, err, appliancevm.Tail(vm.Console, 40))
		}
		if err := verify(target, source, exts); err != nil {
			return nil, fmt.Errorf("%s boot: %w", name, err)
		}
		return vm, nil
	}
	var toInit, overhead, wall, apply []time.Duration
	var lastRun *appliancevm.Run
	for i := range rounds {
		vm, err := boot(fmt.Sprintf("tiny%d", i), tinyTarget, tinyPayload, tinyID, tinyExts, tinySource, 0)
		if err != nil {
			return err
		}
		overhead = append(overhead, vm.Elapsed)
		at, ok := vm.At(appliancevm.InitLine)
		if !ok {
			at, ok = vm.At("standbykit-writer: report on")
		}
		if ok {
			toInit = append(toInit, at)
		}
		// Generous: TCG writes a few MB/s.
		timeout := appliancevm.DefaultTimeout + time.Duration(changed/(256<<10))*time.Second
		vm, err = boot(fmt.Sprintf("write%d", i), target, payload, id, exts, source, timeout)
		if err != nil {
			return err
		}
		wall = append(wall, vm.Elapsed)
		from, ok1 := vm.At("standbykit-writer: payload on ")
		to, ok2 := vm.At("standbykit-writer: payload " + id + ":")
		if ok1 && ok2 {
			apply = append(apply, to-from)
		}
		lastRun = vm
	}

	// 3. The table.
	best := slices.Min[[]time.Duration]
	runs := func(d []time.Duration) string {
		var s []string
		for _, x := range d {
			s = append(s, fmt.Sprintf("%.2f", x.Seconds()))
		}
		return strings.Join(s, " ")
	}
	row := func(what string, d []time.Duration, rate bool) {
		if len(d) == 0 {
			fmt.Printf("  %-52s %9s\n", what, "n/a")
			return
		}
		mb := ""
		if rate {
			mb = fmt.Sprintf("%8.1f", mbps(changed, best(d)))
		}
		fmt.Printf("  %-52s %8.2fs %8s  %s\n", what, best(d).Seconds(), mb, runs(d))
	}
	net := make([]time.Duration, len(wall))
	for i, w := range wall {
		net[i] = w - best(overhead)
	}
	fmt.Println()
	fmt.Printf("writer appliance, %s changed on a %s disk, controller %s, best of %d (MB/s of changed data, 10⁶ B/s):\n",
		formatSize(changed), formatSize(disk), controller, rounds)
	fmt.Printf("  %-52s %9s %8s  %s\n", "step", "best", "MB/s", "runs (s)")
	row(fmt.Sprintf("1. WritePayload to a file (%.1f MiB payload)", float64(payloadLen)/(1<<20)), build, true)
	row("   … and fsync", buildSync, true)
	row("2. qemu (TCG) start → kernel runs /init", toInit, false)
	row("   qemu start → power-off, 64 KiB payload (overhead)", overhead, false)
	row("   qemu start → power-off, the payload", wall, false)
	row("   appliance write = that − best overhead", net, true)
	row("   Apply inside the VM (console: disk found → done)", apply, true)
	fmt.Println()
	fmt.Println("  QEMU runs under TCG (emulated CPU, qemu64, no SSE4.2): far slower than a real host;")
	fmt.Println("  the appliance figures compare runs and controllers here, they do not predict ESXi.")
	fmt.Println("  Apply = guard read, write, sync, read back and compare, with O_DIRECT; each boot's report")
	fmt.Println("  said done and the target matched the changes byte for byte.")
	fmt.Printf("  overhead = kernel boot, %d modules loaded, the disks' settle time (standbykit.settle, 2 s\n", len(res.Modules))
	fmt.Println("  by default), power-off; the payload's boot less it is the time its changes add.")
	fmt.Println("  qemu command (last write boot):", shellQuote(lastRun.Cmd))
	return nil
}

// shellQuote joins args as a shell would read them back.
func shellQuote(args []string) string {
	var q []string
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q = append(q, a)
	}
	return strings.Join(q, " ")
}

// layout picks extents totalling changed bytes on a disk of diskSize
// bytes: about half in extents of 4 to 32 MiB, the rest 64 KiB each,
// every one at a random 64 KiB-aligned place, none touching another.
func layout(r *rand.Rand, changed, diskSize int64) ([]extent.Extent, error) {
	blocks := diskSize / block
	used := make([]bool, blocks)
	place := func(n int64) (extent.Extent, error) {
		for range 10000 {
			b := r.Int64N(blocks - n + 1)
			free := true
			for i := max(0, b-1); i < min(blocks, b+n+1); i++ {
				if used[i] {
					free = false
					break
				}
			}
			if free {
				for i := b; i < b+n; i++ {
					used[i] = true
				}
				return extent.Extent{Off: b * block, Len: n * block}, nil
			}
		}
		return extent.Extent{}, fmt.Errorf("no room for %d MiB on the disk: give a larger --disk", n*block>>20)
	}
	var exts []extent.Extent
	large := changed / 2 / (1 << 20) * (1 << 20)
	for large >= 4<<20 {
		n := min(large, (4+r.Int64N(29))<<20)
		if large-n < 4<<20 {
			n = large
		}
		e, err := place(n / block)
		if err != nil {
			return nil, err
		}
		exts = append(exts, e)
		large -= n
	}
	var sum int64
	for _, e := range exts {
		sum += e.Len
	}
	for ; sum < changed; sum += block {
		e, err := place(1)
		if err != nil {
			return nil, err
		}
		exts = append(exts, e)
	}
	slices.SortFunc(exts, func(a, b extent.Extent) int { return cmp.Compare(a.Off, b.Off) })
	return exts, nil
}

// emptyImage makes path an empty sparse image of n bytes (all zeros),
// replacing what it held.
func emptyImage(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeSource makes path a sparse image of n bytes with random data in
// exts.
func writeSource(path string, n int64, exts []extent.Extent) error {
	if err := emptyImage(path, n); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{'s', 'b', 'k'})
	buf := make([]byte, 4<<20)
	for _, e := range exts {
		for off := e.Off; off < e.End(); {
			b := buf[:min(int64(len(buf)), e.End()-off)]
			_, _ = r.Read(b)
			if _, err := f.WriteAt(b, off); err != nil {
				return err
			}
			off += int64(len(b))
		}
	}
	return f.Close()
}

// buildPayload writes the payload that makes target (its base) source
// over exts to path, and returns its ID.
func buildPayload(ctx context.Context, path string, capacity int64, exts []extent.Extent, source, target string) (string, error) {
	src, err := os.Open(source)
	if err != nil {
		return "", err
	}
	defer src.Close()
	base, err := os.Open(target)
	if err != nil {
		return "", err
	}
	defer base.Close()
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	id, _, err := appliance.WritePayload(ctx, w, []appliance.Target{{Capacity: capacity, Extents: exts, Source: src, Base: base}})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return id, err
}

// verify compares target with source, which is what target should be
// now, byte for byte over exts and over every range target has
// allocated (SEEK_DATA): the rest of target is holes, zeros, as is the
// rest of source. Without SEEK_DATA it compares the whole images.
func verify(target, source string, exts []extent.Extent) error {
	t, err := os.Open(target)
	if err != nil {
		return err
	}
	defer t.Close()
	s, err := os.Open(source)
	if err != nil {
		return err
	}
	defer s.Close()
	fi, err := t.Stat()
	if err != nil {
		return err
	}
	ranges := slices.Clone(exts)
	data, err := dataRanges(t, fi.Size())
	if err != nil {
		data = []extent.Extent{{Off: 0, Len: fi.Size()}}
	}
	ranges = append(ranges, data...)
	a, b := make([]byte, 4<<20), make([]byte, 4<<20)
	for _, e := range ranges {
		for off := e.Off; off < e.End(); {
			n := min(int64(len(a)), e.End()-off)
			if _, err := t.ReadAt(a[:n], off); err != nil {
				return fmt.Errorf("reading the target at %d: %w", off, err)
			}
			if _, err := s.ReadAt(b[:n], off); err != nil {
				return fmt.Errorf("reading the source at %d: %w", off, err)
			}
			if !bytes.Equal(a[:n], b[:n]) {
				i := 0
				for a[i] == b[i] {
					i++
				}
				return fmt.Errorf("the target differs from what the payload should make of it at byte %d", off+int64(i))
			}
			off += n
		}
	}
	return nil
}

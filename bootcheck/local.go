package bootcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/standbykit/standbykit/internal/appliancevm"
)

// ErrUnavailable is returned, wrapped, when the local boot check cannot
// run on this machine: no qemu-system-x86_64, or no OVMF firmware for an
// EFI boot.
var ErrUnavailable = errors.New("bootcheck: the local boot check cannot run here")

// Firmware names for LocalOptions.Firmware (the names package p2v's
// plans use).
const (
	BIOS = "bios"
	EFI  = "efi"
)

// Defaults of the LocalOptions settings that a zero value stands for.
const (
	DefaultSettle    = 30 * time.Second
	DefaultInterval  = 2 * time.Second
	DefaultStable    = time.Minute
	DefaultTimeout   = 10 * time.Minute
	DefaultMemoryMiB = 2048
	DefaultCPUs      = 2
)

// ScreenshotFile is the name of the screenshot Local keeps in
// LocalOptions.Dir.
const ScreenshotFile = "screenshot.png"

// Disk is one disk of the machine Local boots.
type Disk struct {
	// Path is the disk's image: a raw file, or the top file of a chain
	// QEMU follows (qcow2 backing files, VMDK parents) — a boot point's
	// chain exported to local files.
	Path string
	// Format is QEMU's name of Path's format (raw, qcow2, vmdk, vhdx…);
	// if empty, qcow2, VMDK and VHDX files are told by their first bytes
	// and any other file is taken as raw.
	Format string
}

// LocalOptions are the settings of Local. Only Disks and Dir are needed.
type LocalOptions struct {
	// Qemu is the qemu-system-x86_64 program (looked up on PATH if
	// empty).
	Qemu string
	// Disks are attached in this order on one controller; the firmware
	// boots the first. Local never writes to them: the machine's writes
	// go to temporary files QEMU deletes.
	Disks []Disk
	// Controller is the disk controller the standby VM gets, by package
	// p2v's name (pvscsi, lsilogic-sas, sata, nvme) or QEMU's (lsisas,
	// ahci); pvscsi if empty.
	Controller string
	// Firmware is BIOS (SeaBIOS; the default) or EFI (OVMF: OVMFCode and
	// OVMFVars, its code and a variable store template, else the first
	// pair found where Debian, Fedora, Arch or openSUSE install them;
	// without one Local refuses with ErrUnavailable).
	Firmware           string
	OVMFCode, OVMFVars string
	// MemoryMiB and CPUs size the machine (DefaultMemoryMiB, DefaultCPUs
	// if 0).
	MemoryMiB, CPUs int
	// Accel is QEMU's accelerator; if empty, kvm when /dev/kvm can be
	// opened and the processor shows virtualization support (vmx or svm
	// in /proc/cpuinfo), else tcg (emulation, many times slower: raise
	// the times).
	Accel string
	// Settle is the time from power-on to the first screenshot judged
	// (DefaultSettle if 0). From then on a screenshot is taken every
	// Interval (DefaultInterval if 0): the check passes with the first
	// screenshot that passes the Rules; it fails once the screen has
	// failed and not changed for Stable (DefaultStable if 0: long
	// enough for a boot loader reading a kernel without a word on the
	// screen; a screen changes when more than 0.1% of its pixels do,
	// so a blinking cursor is no change); and it times out (TimedOut) when neither has happened
	// within Timeout of power-on (DefaultTimeout if 0).
	Settle, Interval, Stable, Timeout time.Duration
	// Rules judge each screenshot.
	Rules Rules
	// Dir receives the screenshot that decided, ScreenshotFile (PNG).
	Dir string
	// Log, if set, receives QEMU's command line, and a line per
	// screenshot at debug level.
	Log *slog.Logger
}

// controllerNames maps the names Controller takes to appliancevm's.
var controllerNames = map[string]string{
	"": "pvscsi", "pvscsi": "pvscsi",
	"lsilogic-sas": "lsisas", "lsisas": "lsisas",
	"sata": "ahci", "ahci": "ahci",
	"nvme": "nvme",
}

// ovmfPlaces are where distributions install OVMF's code and variable
// store template, in the order Local tries them.
var ovmfPlaces = [][2]string{
	{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
	{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
	{"/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"},
	{"/usr/share/edk2/x64/OVMF_CODE.4m.fd", "/usr/share/edk2/x64/OVMF_VARS.4m.fd"},
	{"/usr/share/qemu/ovmf-x86_64-code.bin", "/usr/share/qemu/ovmf-x86_64-vars.bin"},
}

func (o LocalOptions) withDefaults() LocalOptions {
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&o.Settle, DefaultSettle)
	set(&o.Interval, DefaultInterval)
	set(&o.Stable, DefaultStable)
	set(&o.Timeout, DefaultTimeout)
	if o.MemoryMiB == 0 {
		o.MemoryMiB = DefaultMemoryMiB
	}
	if o.CPUs == 0 {
		o.CPUs = DefaultCPUs
	}
	if o.Accel == "" {
		o.Accel = "tcg"
		if kvmUsable() {
			o.Accel = "kvm"
		}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Local boots the disks under qemu-system-x86_64 with no network, on the
// controller and firmware the standby VM gets, takes screenshots through
// QEMU's monitor (QMP screendump) and judges them by opts.Rules (see
// LocalOptions for when it decides). It returns the verdict and the
// screenshot that decided, kept in opts.Dir; an error when the machine
// could not be run or watched (ErrUnavailable when this host lacks QEMU
// or OVMF), with the screenshot path if one was taken. QEMU is killed
// whatever happened.
func Local(ctx context.Context, opts LocalOptions) (Verdict, string, error) {
	o := opts.withDefaults()
	if o.Dir == "" {
		return Verdict{}, "", errors.New("bootcheck: no directory for the screenshot (LocalOptions.Dir)")
	}
	args, cleanup, err := o.qemuArgs()
	if err != nil {
		return Verdict{}, "", err
	}
	defer cleanup()
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return Verdict{}, "", fmt.Errorf("bootcheck: %w", err)
	}
	qemu := o.Qemu
	if qemu == "" {
		if qemu, err = exec.LookPath("qemu-system-x86_64"); err != nil {
			return Verdict{}, "", fmt.Errorf("%w: %w (apt-get install qemu-system-x86)", ErrUnavailable, err)
		}
	}
	work := args.work
	cmd := exec.Command(qemu, args.args...)
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	o.Log.Info("bootcheck: starting qemu", "cmd", strings.Join(cmd.Args, " "))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Verdict{}, "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	}()
	qemuFailed := func() error {
		return fmt.Errorf("bootcheck: qemu exited (%v) after %v: %s", waitErr, time.Since(start).Round(time.Millisecond), bytes.TrimSpace(out.Bytes()))
	}

	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	mon, err := dialQMP(dialCtx, filepath.Join(work, "qmp.sock"), exited)
	cancel()
	if err != nil {
		select {
		case <-exited:
			return Verdict{}, "", qemuFailed()
		default:
			return Verdict{}, "", err
		}
	}
	defer mon.Close()

	shoot := func(ctx context.Context) (*image.RGBA, error) { return screendump(ctx, mon, work, exited) }
	w := watcher{o: o, shoot: shoot, start: start, exited: exited}
	v, last, err := w.watch(ctx)
	shot := ""
	if last != nil {
		shot = filepath.Join(o.Dir, ScreenshotFile)
		if werr := writePNG(shot, last); werr != nil {
			shot = ""
			err = errors.Join(err, werr)
		}
	}
	if errors.Is(err, errQemuExited) {
		err = qemuFailed()
	}
	return v, shot, err
}

// localArgs are QEMU's arguments and the working directory they refer to.
type localArgs struct {
	args []string
	work string
}

// qemuArgs builds QEMU's command line in a new working directory (short,
// for the monitor socket's path), which cleanup removes.
func (o LocalOptions) qemuArgs() (localArgs, func(), error) {
	nothing := func() {}
	if len(o.Disks) == 0 {
		return localArgs{}, nothing, errors.New("bootcheck: no disks to boot")
	}
	ctrl, ok := controllerNames[o.Controller]
	if !ok {
		return localArgs{}, nothing, fmt.Errorf("bootcheck: unknown controller %q (want pvscsi, lsilogic-sas, sata or nvme)", o.Controller)
	}
	if strings.Trim(o.Accel, "abcdefghijklmnopqrstuvwxyz") != "" {
		return localArgs{}, nothing, fmt.Errorf("bootcheck: bad accelerator %q", o.Accel)
	}
	var drives []appliancevm.Drive
	for i, d := range o.Disks {
		format := d.Format
		if format == "" {
			var err error
			if format, err = sniffFormat(d.Path); err != nil {
				return localArgs{}, nothing, err
			}
		}
		path, err := filepath.Abs(d.Path)
		if err != nil {
			return localArgs{}, nothing, fmt.Errorf("bootcheck: %w", err)
		}
		drives = append(drives, appliancevm.Drive{File: path, Format: format, Snapshot: true, Boot: i == 0})
	}
	attach, err := appliancevm.AttachDrives(ctrl, drives...)
	if err != nil {
		return localArgs{}, nothing, fmt.Errorf("bootcheck: %w", err)
	}
	var firmware []string
	code, vars := o.OVMFCode, o.OVMFVars
	switch o.Firmware {
	case "", BIOS:
	case EFI:
		if code == "" && vars == "" {
			for _, p := range ovmfPlaces {
				if fileExists(p[0]) && fileExists(p[1]) {
					code, vars = p[0], p[1]
					break
				}
			}
			if code == "" {
				return localArgs{}, nothing, fmt.Errorf("%w: an EFI boot needs OVMF, found in none of its usual places (apt-get install ovmf, or set OVMFCode and OVMFVars)", ErrUnavailable)
			}
		}
		if code == "" || vars == "" || strings.Contains(code+vars, ",") {
			return localArgs{}, nothing, fmt.Errorf("bootcheck: OVMF needs its code and its variable store, without commas in their names (got %q, %q)", code, vars)
		}
	default:
		return localArgs{}, nothing, fmt.Errorf("bootcheck: unknown firmware %q (want bios or efi)", o.Firmware)
	}
	work, err := os.MkdirTemp("", "sbk-bootcheck-")
	if err != nil {
		return localArgs{}, nothing, fmt.Errorf("bootcheck: %w", err)
	}
	cleanup := func() { os.RemoveAll(work) }
	if o.Firmware == EFI {
		// The machine may write EFI variables: into a copy.
		data, err := os.ReadFile(vars)
		if err == nil {
			err = os.WriteFile(filepath.Join(work, "vars.fd"), data, 0o600)
		}
		if err != nil {
			cleanup()
			return localArgs{}, nothing, fmt.Errorf("bootcheck: OVMF variable store: %w", err)
		}
		firmware = []string{
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + code,
			"-drive", "if=pflash,format=raw,unit=1,file=" + filepath.Join(work, "vars.fd"),
		}
	}
	args := []string{
		"-name", "standbykit-bootcheck", "-machine", "pc", "-accel", o.Accel,
		"-m", strconv.Itoa(o.MemoryMiB), "-smp", strconv.Itoa(o.CPUs),
		// No network, no default devices: the standard VGA card only.
		"-nodefaults", "-vga", "std", "-display", "none",
		// A machine that powers off keeps its last screen for the check.
		"-no-shutdown",
		"-qmp", "unix:" + filepath.Join(work, "qmp.sock") + ",server=on,wait=off",
	}
	args = append(append(args, firmware...), attach...)
	return localArgs{args: args, work: work}, cleanup, nil
}

// sniffFormat tells qcow2, VMDK and VHDX files by their first bytes;
// anything else is raw.
func sniffFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("bootcheck: %w", err)
	}
	defer f.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("bootcheck: %w", err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("QFI\xfb")):
		return "qcow2", nil
	case bytes.HasPrefix(head, []byte("KDMV")), bytes.Contains(head, []byte("# Disk DescriptorFile")):
		return "vmdk", nil
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		return "vhdx", nil
	}
	return "raw", nil
}

// kvmUsable tells whether QEMU can use KVM here. An openable /dev/kvm is
// not enough: some sandboxes offer one that never runs a guest, on a
// processor whose flags show no virtualization support.
func kvmUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(cpuinfo), "\n") {
		if name, flags, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "flags" {
			for _, f := range strings.Fields(flags) {
				if f == "vmx" || f == "svm" {
					return true
				}
			}
		}
	}
	return false
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// tailBuffer keeps the last 16 KiB written to it: QEMU's messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - 16<<10; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}

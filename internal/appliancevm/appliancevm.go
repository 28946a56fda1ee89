// Package appliancevm boots the writer appliance (the boot files
// image.Build makes, or its ISO image) in qemu-system-x86_64 under TCG,
// with disk images attached on one of the controllers StandbyKit gives
// standby VMs (on a SCSI one, at chosen units if need be: AttachAt), and
// returns what it printed once it has powered itself off: the console,
// each line stamped with the host time since QEMU started, and the
// report. The writer's boot test and the appliance
// benchmark (internal/bench/appliancebench) share it; the local boot
// check (package bootcheck) attaches a boot point's disks with
// AttachDrives.
//
// It lives in the module's internal folder, not under esx/appliance,
// so that programs outside esx/appliance (the benchmark) may import it.
package appliancevm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Cmdline is the kernel command line of a direct kernel boot: the
// console on the first serial port, the report on the second, and a
// power-off rather than a hang should the kernel panic (-no-reboot).
const Cmdline = "console=ttyS0 panic=-1 standbykit.report=ttyS1"

// InitLine is what the kernel prints on the console when it starts the
// initramfs's /init, the writer.
const InitLine = "Run /init as init process"

// controller attaches drives to the VM as one of the controllers
// StandbyKit gives standby VMs would.
type controller struct {
	// scsi tells a SCSI controller, whose disks have units (scsi-id).
	scsi bool
	// attach attaches the drives ids, drive i at SCSI unit units[i]
	// unless units is nil (QEMU then numbers them 0, 1, 2, … in order),
	// with opts[i] added to its device's properties.
	attach func(ids []string, units []int, opts []string) []string
}

// scsiID is the scsi-id property of drive i, if units gives one.
func scsiID(units []int, i int) string {
	if units == nil {
		return ""
	}
	return fmt.Sprintf(",scsi-id=%d", units[i])
}

var controllers = map[string]controller{
	"pvscsi": {scsi: true, attach: func(ids []string, units []int, opts []string) []string {
		args := []string{"-device", "pvscsi,id=c"}
		for i, id := range ids {
			args = append(args, "-device", "scsi-hd,bus=c.0,drive="+id+scsiID(units, i)+opts[i])
		}
		return args
	}},
	"lsisas": {scsi: true, attach: func(ids []string, units []int, opts []string) []string {
		// QEMU's SAS1068 reports a disk's WWN as its SAS address, and
		// Linux's mptsas ignores devices whose address is 0, the default.
		// It puts the disk of scsi-id N on phy N (N < 8).
		args := []string{"-device", "mptsas1068,id=c"}
		for i, id := range ids {
			args = append(args, "-device", fmt.Sprintf("scsi-hd,bus=c.0,drive=%s,wwn=0x5000c5000000%04x%s%s", id, i+1, scsiID(units, i), opts[i]))
		}
		return args
	}},
	"ahci": {attach: func(ids []string, _ []int, opts []string) []string {
		args := []string{"-device", "ahci,id=ahci"}
		for i, id := range ids {
			args = append(args, "-device", fmt.Sprintf("ide-hd,bus=ahci.%d,drive=%s%s", i, id, opts[i]))
		}
		return args
	}},
	"nvme": {attach: func(ids []string, _ []int, opts []string) []string {
		var args []string
		for i, id := range ids {
			args = append(args, "-device", "nvme,serial=sbk-"+id+",drive="+id+opts[i])
		}
		return args
	}},
}

// Controllers are the names Attach knows, sorted: ahci, lsisas (LSI
// Logic SAS, QEMU's mptsas1068), nvme, pvscsi (VMware paravirtual SCSI).
func Controllers() []string {
	var names []string
	for n := range controllers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// HasUnits tells whether controller is a SCSI controller, whose disks
// have SCSI units (pvscsi, lsisas).
func HasUnits(controller string) bool { return controllers[controller].scsi }

// Attach returns the QEMU arguments that attach the raw disk images
// files, in that order, on controller (one of Controllers). On a SCSI
// controller QEMU gives them units 0, 1, 2, … in that order.
func Attach(controller string, files ...string) ([]string, error) {
	return AttachAt(controller, nil, files...)
}

// AttachAt is Attach with files[i] at SCSI unit units[i] (QEMU's
// scsi-id), as package esx attaches disks to the appliance: the payload
// at unit 0, the targets at 1, 2, …. units must be nil on a controller
// without units (HasUnits); QEMU's lsisas takes units 0 to 7 only.
func AttachAt(controller string, units []int, files ...string) ([]string, error) {
	drives := make([]Drive, len(files))
	for i, f := range files {
		drives[i] = Drive{File: f}
	}
	return attach(controller, units, drives)
}

// Drive is one disk image for AttachDrives.
type Drive struct {
	// File is the image; Format QEMU's name of its format (raw if
	// empty): qcow2 or vmdk files bring their backing chains along.
	File, Format string
	// Snapshot sends the VM's writes to a temporary file QEMU deletes
	// on exit, leaving File and its chain untouched.
	Snapshot bool
	// Boot makes the firmware try this disk first (bootindex=0).
	Boot bool
}

// AttachDrives returns the QEMU arguments that attach drives, in that
// order, on controller (one of Controllers), numbered as Attach numbers
// them.
func AttachDrives(controller string, drives ...Drive) ([]string, error) {
	return attach(controller, nil, drives)
}

func attach(controller string, units []int, drives []Drive) ([]string, error) {
	c, ok := controllers[controller]
	if !ok {
		return nil, fmt.Errorf("appliancevm: unknown controller %q (want one of %s)", controller, strings.Join(Controllers(), ", "))
	}
	if units != nil && (!c.scsi || len(units) != len(drives)) {
		return nil, fmt.Errorf("appliancevm: %d units for %d disks on %s (units only on pvscsi and lsisas, one per disk)", len(units), len(drives), controller)
	}
	var ids, opts, args []string
	for i, d := range drives {
		if strings.Contains(d.File, ",") {
			return nil, fmt.Errorf("appliancevm: QEMU cannot take a drive file whose name has a comma: %s", d.File)
		}
		format := d.Format
		if format == "" {
			format = "raw"
		}
		if strings.ContainsAny(format, ",=") {
			return nil, fmt.Errorf("appliancevm: bad drive format %q", format)
		}
		id := fmt.Sprintf("d%d", i)
		ids = append(ids, id)
		drive := "if=none,id=" + id + ",format=" + format + ",file=" + d.File
		if d.Snapshot {
			drive += ",snapshot=on"
		}
		args = append(args, "-drive", drive)
		opt := ""
		if d.Boot {
			opt = ",bootindex=0"
		}
		opts = append(opts, opt)
	}
	return append(args, c.attach(ids, units, opts)...), nil
}

// AttachPVSCSI returns the QEMU arguments that attach groups of raw disk
// images, each group on a pvscsi controller of its own, files[g][i] at
// SCSI unit units[g][i]: as package esx attaches a batch of payloads to
// the appliance, each payload with its targets on its own controller.
func AttachPVSCSI(units [][]int, files [][]string) ([]string, error) {
	if len(units) != len(files) {
		return nil, fmt.Errorf("appliancevm: %d unit lists for %d groups of disks", len(units), len(files))
	}
	var args []string
	for g := range files {
		if len(units[g]) != len(files[g]) {
			return nil, fmt.Errorf("appliancevm: group %d: %d units for %d disks", g, len(units[g]), len(files[g]))
		}
		c := fmt.Sprintf("c%d", g)
		args = append(args, "-device", "pvscsi,id="+c)
		for i, f := range files[g] {
			if strings.Contains(f, ",") {
				return nil, fmt.Errorf("appliancevm: QEMU cannot take a drive file whose name has a comma: %s", f)
			}
			id := fmt.Sprintf("g%dd%d", g, i)
			args = append(args, "-drive", "if=none,id="+id+",format=raw,file="+f,
				"-device", fmt.Sprintf("scsi-hd,bus=%s.0,drive=%s,scsi-id=%d", c, id, units[g][i]))
		}
	}
	return args, nil
}

// VM is one boot of the appliance.
type VM struct {
	// Qemu is the qemu-system-x86_64 program.
	Qemu string
	// Vmlinuz and Initrd are the boot files for a direct kernel boot,
	// with Cmdline; or ISO, if set, is booted from the CD-ROM drive
	// instead, with the command line it holds, the report on the one
	// serial port and the console on the screen (none: Run.Console is
	// empty).
	Vmlinuz, Initrd string
	ISO             string
	// Dir receives console.log and report.txt.
	Dir string
	// Args are added to QEMU's command line: the disks (Attach).
	Args []string
	// Timeout bounds the boot (DefaultTimeout if 0).
	Timeout time.Duration
}

// DefaultTimeout bounds one boot under TCG (about 10 s with small disks).
const DefaultTimeout = 3 * time.Minute

// Line is one console line and when QEMU printed it.
type Line struct {
	At   time.Duration // since QEMU started
	Text string
}

// Run is what one boot printed.
type Run struct {
	// Cmd is QEMU's command line.
	Cmd []string
	// Console is everything on the console; Lines the same, line by line.
	Console string
	Lines   []Line
	// Report is the content of the report's serial port.
	Report []byte
	// Elapsed is the wall time from QEMU's start to its exit.
	Elapsed time.Duration
}

// At returns when the first console line holding s was printed.
func (r *Run) At(s string) (time.Duration, bool) {
	for _, l := range r.Lines {
		if strings.Contains(l.Text, s) {
			return l.At, true
		}
	}
	return 0, false
}

// Boot runs the appliance in QEMU (TCG, one CPU, 256 MiB) and returns
// what it printed once it has powered itself off; an error, with the end
// of the console, when QEMU fails or the VM does not power off within
// the timeout.
func Boot(ctx context.Context, vm VM) (*Run, error) {
	timeout := vm.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	consoleLog, reportFile := filepath.Join(vm.Dir, "console.log"), filepath.Join(vm.Dir, "report.txt")
	logFile, err := os.Create(consoleLog)
	if err != nil {
		return nil, fmt.Errorf("appliancevm: %w", err)
	}
	defer logFile.Close()
	// The console goes to QEMU's standard output, so that each line is
	// stamped as it comes.
	how := []string{
		"-kernel", vm.Vmlinuz, "-initrd", vm.Initrd, "-append", Cmdline,
		"-serial", "stdio", "-serial", "file:" + reportFile,
	}
	if vm.ISO != "" {
		how = []string{"-cdrom", vm.ISO, "-boot", "d", "-serial", "file:" + reportFile}
	}
	args := append(append([]string{
		"-machine", "pc", "-accel", "tcg", "-m", "256", "-smp", "1",
		"-nodefaults", "-display", "none", "-no-reboot", "-monitor", "none",
	}, how...), vm.Args...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, vm.Qemu, args...)
	start := time.Now()
	lw := &lineWriter{start: start, tee: logFile}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = lw, &stderr
	err = cmd.Run()
	r := &Run{Cmd: append([]string{vm.Qemu}, args...), Elapsed: time.Since(start)}
	r.Console, r.Lines = lw.finish()
	if ctx.Err() != nil {
		return r, fmt.Errorf("appliancevm: the appliance did not power off within %v; console:\n%s", timeout, Tail(r.Console, 40))
	}
	if err != nil {
		return r, fmt.Errorf("appliancevm: qemu: %w: %s\nconsole:\n%s", err, bytes.TrimSpace(stderr.Bytes()), Tail(r.Console, 40))
	}
	if r.Report, err = os.ReadFile(reportFile); err != nil {
		return r, fmt.Errorf("appliancevm: %w", err)
	}
	return r, nil
}

// lineWriter keeps what is written to it, stamps each line with the
// time it was completed, and copies it all to tee.
type lineWriter struct {
	start time.Time
	tee   io.Writer

	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
	lines   []Line
	teeErr  error
}

func (w *lineWriter) Write(p []byte) (int, error) {
	at := time.Since(w.start)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	if w.teeErr == nil {
		_, w.teeErr = w.tee.Write(p)
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.lines = append(w.lines, Line{At: at, Text: strings.TrimRight(string(w.partial[:i]), "\r")})
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

// finish returns everything written and the lines, the last one even
// without its newline.
func (w *lineWriter) finish() (string, []Line) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.lines = append(w.lines, Line{At: time.Since(w.start), Text: strings.TrimRight(string(w.partial), "\r")})
		w.partial = nil
	}
	return w.all.String(), w.lines
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

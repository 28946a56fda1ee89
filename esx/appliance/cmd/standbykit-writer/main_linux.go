package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"
)

// roleEnv set to "work" makes the program the worker, which /init starts.
const roleEnv = "STANDBYKIT_WRITER_ROLE"

func main() {
	if os.Getenv(roleEnv) == "work" {
		os.Exit(workerMain())
	}
	initMain()
}

// initMain is process 1: it mounts the kernel's file systems, opens the
// report's serial port, runs the worker as a child process (so that even
// a crash of the worker ends the report with an error line), then syncs
// and powers off.
func initMain() {
	console := io.Writer(os.Stdout)
	logf := func(format string, args ...any) {
		fmt.Fprintf(console, "standbykit-writer: "+format+"\n", args...)
	}
	var report *tracker
	var serial *os.File
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		if err := mountAll(); err != nil {
			return err
		}
		if c, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
			console = c
		}
		text, err := os.ReadFile("/proc/cmdline")
		if err != nil {
			return err
		}
		cfg, cerr := parseCmdline(string(text))
		if serial, err = openSerial("/dev/" + cfg.reportDev); err != nil {
			return fmt.Errorf("report port: %w", err)
		}
		report = newTracker(serial)
		if cerr != nil {
			return cerr
		}
		logf("report on /dev/%s", cfg.reportDev)
		return supervise(report, console)
	}()
	switch {
	case report == nil:
		logf("failed, and no report port: %v", err)
	case err != nil && !report.ended():
		_, _ = report.Write(errorLine(err))
		fallthrough
	case err != nil:
		logf("failed: %v", err)
	case report.lastEvent() != "done":
		_, _ = report.Write(errorLine(errors.New("the report ended without a result")))
		logf("failed: the report ended without a result")
	default:
		logf("done")
	}
	if serial != nil {
		_ = unix.IoctlSetInt(int(serial.Fd()), unix.TCSBRK, 1) // tcdrain
		_ = serial.Sync()
	}
	logf("powering off")
	powerOff()
}

// supervise runs the worker with the report pipe as its file 3 and
// passes each complete line it writes to report.
func supervise(report io.Writer, console io.Writer) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), roleEnv+"=work")
	cmd.Stdout, cmd.Stderr = console, console
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("starting the worker: %w", err)
	}
	w.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, rerr := br.ReadBytes('\n')
		if rerr != nil {
			break // a line cut by a crash is dropped
		}
		if _, err := report.Write(line); err != nil {
			// Nobody would learn what the worker does: closing the pipe
			// makes its report fail, and Apply then writes nothing if
			// it has not started writing yet.
			fmt.Fprintf(console, "standbykit-writer: report port: %v\n", err)
			break
		}
	}
	r.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	return nil
}

// workerMain is the worker: it does the work and reports on file 3.
func workerMain() int {
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stdout, "standbykit-writer: "+format+"\n", args...)
	}
	report := newTracker(os.NewFile(3, "report"))
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		text, err := os.ReadFile("/proc/cmdline")
		if err != nil {
			return err
		}
		cfg, err := parseCmdline(string(text))
		if err != nil {
			return err
		}
		var uts unix.Utsname
		_ = unix.Uname(&uts)
		e := env{
			cfg:        cfg,
			sys:        os.DirFS("/sys"),
			devDir:     "/dev",
			loadModule: finitModule,
			report:     report,
			logf:       logf,
			poll:       200 * time.Millisecond,
		}
		if e.modulesDir, err = modulesDir("/", unix.ByteSliceToString(uts.Release[:])); err != nil {
			logf("%v", err)
			e.modulesDir = ""
		}
		// No modprobe here: let the kernel fail its requests for modules
		// at once.
		_ = os.WriteFile("/proc/sys/kernel/modprobe", []byte("\n"), 0)
		results, err := work(context.Background(), e)
		for _, res := range results {
			if res.PayloadID != "" && res.Targets != nil {
				logf("payload %s: %d records, %d bytes written to disks %v", res.PayloadID, res.Records, res.BytesWritten, res.Targets)
			}
		}
		return err
	}()
	if err != nil {
		if !report.ended() {
			_, _ = report.Write(errorLine(err))
		}
		logf("failed: %v", err)
		return 1
	}
	return 0
}

// finitModule loads a kernel module file with parameters; one already
// loaded is fine.
func finitModule(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), params, 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

// mountAll mounts /proc, /sys and devtmpfs on /dev (each unless it
// already is).
func mountAll() error {
	for _, m := range []struct{ src, dir, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
	} {
		_ = os.MkdirAll(m.dir, 0o755)
		err := unix.Mount(m.src, m.dir, m.fstype, unix.MS_NOSUID|unix.MS_NOEXEC, "")
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err)
		}
	}
	return nil
}

// openSerial opens a serial port for writing the report, its output
// left untouched (no newline translation).
func openSerial(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
		t.Oflag &^= unix.OPOST
		_ = unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
	}
	return f, nil
}

// powerOff syncs the file systems and powers the machine off. Should
// that fail, it halts; it never returns.
func powerOff() {
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	fmt.Fprintf(os.Stdout, "standbykit-writer: power off: %v\n", err)
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_HALT)
	for {
		time.Sleep(time.Hour)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/standbykit/standbykit/esx/appliance"
)

// env is what the writer's work depends on, so that tests can give it a
// sysfs-like tree and regular files for disks.
type env struct {
	cfg config
	// sys is the root of /sys, devDir the directory of device nodes.
	sys    fs.FS
	devDir string
	// modulesDir holds modules.dep and the modules ("": load none),
	// loaded with loadModule.
	modulesDir string
	loadModule func(path, params string) error
	// report receives Apply's report; logf the human lines.
	report io.Writer
	logf   func(format string, args ...any)
	poll   time.Duration
}

// work loads the modules, waits for the disks, finds the payload disk
// and applies the payload to the others.
func work(ctx context.Context, e env) (appliance.Result, error) {
	if e.modulesDir != "" {
		n, err := loadModules(e.modulesDir, e.cfg.moduleParams, e.loadModule, e.logf)
		if err != nil {
			e.logf("%v", err) // the guard tells whether a disk is missing
		}
		e.logf("%d modules loaded", n)
	}
	w := &waiter{
		scan:   func() ([]blockDev, error) { return listDisks(e.sys) },
		probe:  func(d blockDev) (bool, error) { return e.probe(d) },
		wait:   e.cfg.wait,
		settle: e.cfg.settle,
		poll:   e.poll,
		log:    e.logf,
	}
	payloadDev, others, err := w.run()
	if err != nil {
		return appliance.Result{}, err
	}
	payload, err := openDisk(e.node(payloadDev), false)
	if err != nil {
		return appliance.Result{}, fmt.Errorf("payload disk: %w", err)
	}
	defer payload.Close()
	// The SCSI units of the disks on the payload's controller (scsiaddr.go).
	paddr := diskAddr(e.sys, payloadDev.Name)
	addrs := make([]*scsiAddr, len(others))
	for i, d := range others {
		addrs[i] = diskAddr(e.sys, d.Name)
	}
	units, why := controllerUnits(paddr, addrs)
	var disks []appliance.Disk
	var names []string
	for i, d := range others {
		if d.ReadOnly {
			e.logf("%s is read-only: not a target", d.Name)
			continue
		}
		dk, err := openDisk(e.node(d), true)
		if err != nil {
			return appliance.Result{}, fmt.Errorf("disk %s: %w", d.Name, err)
		}
		defer dk.Close()
		dk.unit = units[i]
		disks = append(disks, dk)
		names = append(names, describe(d, addrs[i], dk.unit))
	}
	e.logf("payload on %s; disks: %s", describe(payloadDev, paddr, -1), strings.Join(names, ", "))
	if why != "" {
		e.logf("no SCSI units: %s", why)
	}
	return appliance.Apply(ctx, payload, payload.Size(), disks, e.report)
}

// node returns the device node of d in devDir, made from its device
// number if devtmpfs has not made it.
func (e env) node(d blockDev) string {
	p := filepath.Join(e.devDir, d.Name)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		if major, minor, ok := parseDev(d.Dev); ok {
			_ = unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor)))
		}
	}
	return p
}

// probe tells whether d holds a payload: appliance.PayloadID, which
// rejects any other disk after reading its first sector.
func (e env) probe(d blockDev) (bool, error) {
	f, err := os.Open(e.node(d))
	if err != nil {
		return false, err
	}
	defer f.Close()
	id, err := appliance.PayloadID(f, d.Size)
	switch {
	case err == nil:
		e.logf("%s holds payload %s", d.Name, id)
		return true, nil
	case errors.Is(err, appliance.ErrCorrupt):
		e.logf("%s: not a payload (%v)", d.Name, err)
		return false, nil
	}
	return false, err
}

// describe tells a disk for the console: name, size, SCSI address and
// unit (-1: none), "sdb (64 MiB, 0:0:1:0 on vmw_pvscsi, unit 1)".
func describe(d blockDev, a *scsiAddr, unit int) string {
	s := d.Name + " (" + humanSize(d.Size)
	if a != nil {
		s += ", " + a.String()
	}
	if unit >= 0 {
		s += fmt.Sprintf(", unit %d", unit)
	}
	return s + ")"
}

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

// work loads the modules, waits for the disks, finds the payload disks
// and applies each payload to the disks on its controller
// (appliance.ApplyBatch).
func work(ctx context.Context, e env) ([]appliance.Result, error) {
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
	payloadDevs, others, err := w.run()
	if err != nil {
		return nil, err
	}
	addrs := make([]*scsiAddr, len(others))
	for i, d := range others {
		addrs[i] = diskAddr(e.sys, d.Name)
	}
	// The SCSI units of the disks on each payload's controller
	// (scsiaddr.go); a disk is on at most one of them.
	units := make([]int, len(others))
	for i := range units {
		units[i] = -1
	}
	var payloads []appliance.Payload
	for _, pd := range payloadDevs {
		f, err := openDisk(e.node(pd), false)
		if err != nil {
			return nil, fmt.Errorf("payload disk %s: %w", pd.Name, err)
		}
		defer f.Close()
		paddr := diskAddr(e.sys, pd.Name)
		pu, why := controllerUnits(paddr, addrs)
		for i, u := range pu {
			if u >= 0 {
				units[i] = u
			}
		}
		e.logf("payload on %s", describe(pd, paddr, -1))
		if why != "" {
			e.logf("no SCSI units beside %s: %s", pd.Name, why)
		}
		payloads = append(payloads, appliance.Payload{Data: f, Size: f.Size(), Controller: controllerOf(paddr)})
	}
	var disks []appliance.Disk
	var names []string
	for i, d := range others {
		if d.ReadOnly {
			e.logf("%s is read-only: not a target", d.Name)
			continue
		}
		dk, err := openDisk(e.node(d), true)
		if err != nil {
			return nil, fmt.Errorf("disk %s: %w", d.Name, err)
		}
		defer dk.Close()
		dk.unit, dk.controller = units[i], controllerOf(addrs[i])
		disks = append(disks, dk)
		names = append(names, describe(d, addrs[i], dk.unit))
	}
	e.logf("disks: %s", strings.Join(names, ", "))
	return appliance.ApplyBatch(ctx, payloads, disks, e.report)
}

// controllerOf is the controller of a disk at a (nil: not SCSI) as
// appliance.Controlled tells it: its SCSI host adapter's number, -1 for
// none.
func controllerOf(a *scsiAddr) int {
	if a == nil {
		return -1
	}
	return a.Host
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

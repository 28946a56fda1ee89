package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
	var disks []appliance.Disk
	var names []string
	for _, d := range others {
		if d.ReadOnly {
			e.logf("%s is read-only: not a target", d.Name)
			continue
		}
		dk, err := openDisk(e.node(d), true)
		if err != nil {
			return appliance.Result{}, fmt.Errorf("disk %s: %w", d.Name, err)
		}
		defer dk.Close()
		disks = append(disks, dk)
		names = append(names, d.String())
	}
	e.logf("payload on %s; disks: %v", payloadDev, names)
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

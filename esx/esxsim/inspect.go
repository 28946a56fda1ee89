package esxsim

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/standbykit/standbykit/esx/internal/vmdisks"
)

// WriteDisk writes p at off into the current leaf of disk d (disks in
// controller and unit order) of the VM named vmName, as its guest would
// while it runs: someone using the standby.
func (s *Simulator) WriteDisk(vmName string, d int, off int64, p []byte) error {
	vm, err := s.vm(vmName)
	if err != nil {
		return err
	}
	var leaf string
	s.model.Map().WithLock(s.lockOwner, vm, func() {
		disks := vmdisks.Of(vm.Config)
		if d < 0 || d >= len(disks) {
			err = fmt.Errorf("esxsim: VM %s has %d disks, not disk %d", vmName, len(disks), d)
			return
		}
		if b := vmdisks.Flat(disks[d]); b != nil {
			leaf = b.FileName
		}
	})
	if err != nil {
		return err
	}
	p0, err := s.localPath(leaf)
	if err != nil {
		return err
	}
	s.disks.Lock()
	defer s.disks.Unlock()
	return writeLeaf(p0, off, p)
}

func (s *Simulator) vm(name string) (*simulator.VirtualMachine, error) {
	for _, e := range s.model.Map().All("VirtualMachine") {
		if vm, ok := e.(*simulator.VirtualMachine); ok && vm.Name == name {
			return vm, nil
		}
	}
	return nil, fmt.Errorf("esxsim: no VM %s", name)
}

// UnusedDiskFiles lists the disk files (.vmdk) of the datastore that no
// VM's disk chain uses, now or in a snapshot: what consolidation and
// cleanup must never leave behind. Names are relative to Dir.
func (s *Simulator) UnusedDiskFiles() ([]string, error) {
	used := map[string]bool{}
	var chains []string
	reg := s.model.Map()
	for _, e := range reg.All("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		reg.WithLock(s.lockOwner, vm, func() {
			configs := append([]*types.VirtualMachineConfigInfo{vm.Config}, s.snapshotConfigs(reg, vm)...)
			for _, c := range configs {
				for _, d := range vmdisks.Of(c) {
					for b := vmdisks.Flat(d); b != nil; b = b.Parent {
						chains = append(chains, b.FileName)
					}
				}
			}
		})
	}
	s.disks.Lock()
	defer s.disks.Unlock()
	for _, name := range chains {
		p, err := s.localPath(name)
		if err != nil {
			return nil, err
		}
		used[p] = true
		if d, err := readDescriptor(p); err == nil {
			used[extentPath(p, d)] = true
		}
	}
	var unused []string
	err := filepath.WalkDir(s.Dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".vmdk") || used[p] {
			return err
		}
		rel, _ := filepath.Rel(s.Dir, p)
		unused = append(unused, filepath.ToSlash(rel))
		return nil
	})
	slices.Sort(unused)
	return unused, err
}

// PowerState returns the power state of the VM named vmName
// ("poweredOn", "poweredOff", "suspended").
func (s *Simulator) PowerState(vmName string) (string, error) {
	vm, err := s.vm(vmName)
	if err != nil {
		return "", err
	}
	var state types.VirtualMachinePowerState
	s.model.Map().WithLock(s.lockOwner, vm, func() { state = vm.Runtime.PowerState })
	return string(state), nil
}

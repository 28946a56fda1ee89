package main

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// SCSI units: which disks report one, and which, is the rule the
// package documentation states (doc.go, "SCSI units").

// scsiAddr is where a disk is on a SCSI host adapter, as sysfs tells it.
type scsiAddr struct {
	Host, Channel, Target, LUN int
	// Driver is the host adapter's driver: vmw_pvscsi, mptsas, ahci, …
	Driver string
	// Unit is the disk's unit on its controller by rules 1 and 2 (doc.go),
	// -1 if it has none.
	Unit int
}

func (a *scsiAddr) String() string {
	return fmt.Sprintf("%d:%d:%d:%d on %s", a.Host, a.Channel, a.Target, a.LUN, a.Driver)
}

// Host adapter drivers whose disks have units.
const (
	driverPVSCSI = "vmw_pvscsi"
	driverMPTSAS = "mptsas"
)

// diskAddr reads the SCSI address of whole disk name from a sysfs tree
// (the root of /sys); nil if its device is no SCSI device.
func diskAddr(sys fs.FS, name string) *scsiAddr {
	link, err := fs.ReadLink(sys, "block/"+name+"/device")
	if err != nil {
		return nil
	}
	hctl, ok := parseHCTL(path.Base(link))
	if !ok {
		return nil
	}
	a := &scsiAddr{Host: hctl[0], Channel: hctl[1], Target: hctl[2], LUN: hctl[3], Unit: -1}
	a.Driver = attr(sys, fmt.Sprintf("class/scsi_host/host%d", a.Host), "proc_name")
	if a.Channel != 0 || a.LUN != 0 {
		return a
	}
	switch a.Driver {
	case driverPVSCSI:
		a.Unit = a.Target
	case driverMPTSAS:
		a.Unit = sasPhy(sys, a.Host, a.Target)
	}
	return a
}

// parseHCTL reads a SCSI device name, host:channel:target:LUN.
func parseHCTL(s string) (hctl [4]int, ok bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 4 {
		return hctl, false
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 31)
		if err != nil {
			return hctl, false
		}
		hctl[i] = int(n)
	}
	return hctl, true
}

// sasPhy returns the phy identifier of the SAS end device of host whose
// SCSI target number is target; -1 unless exactly one is found.
func sasPhy(sys fs.FS, host, target int) int {
	entries, err := fs.ReadDir(sys, "class/sas_device")
	if err != nil {
		return -1
	}
	prefix := fmt.Sprintf("end_device-%d:", host)
	phy := -1
	for _, e := range entries {
		dir := "class/sas_device/" + e.Name()
		if !strings.HasPrefix(e.Name(), prefix) || attr(sys, dir, "scsi_target_id") != strconv.Itoa(target) {
			continue
		}
		n, err := strconv.ParseUint(attr(sys, dir, "phy_identifier"), 10, 8)
		if err != nil || phy >= 0 {
			return -1
		}
		phy = int(n)
	}
	return phy
}

// controllerUnits applies rule 3 (doc.go) to the addresses of the disks (nil: not
// SCSI) found beside the payload disk (at payload): each disk's unit, or
// -1; and, when no disk may report a unit, why.
func controllerUnits(payload *scsiAddr, disks []*scsiAddr) (units []int, why string) {
	units = make([]int, len(disks))
	for i := range units {
		units[i] = -1
	}
	switch {
	case payload == nil:
		return units, "the payload disk is no SCSI disk"
	case payload.Driver != driverPVSCSI && payload.Driver != driverMPTSAS:
		return units, fmt.Sprintf("the payload disk's adapter (%s) gives no units", payload.Driver)
	case payload.Unit < 0:
		return units, fmt.Sprintf("the payload disk (%v) has no unit", payload)
	case payload.Unit != 0:
		return units, fmt.Sprintf("the payload disk (%v) is at unit %d, not 0", payload, payload.Unit)
	}
	for i, a := range disks {
		if a != nil && a.Host == payload.Host && a.Unit >= 0 {
			units[i] = a.Unit
		}
	}
	return units, ""
}

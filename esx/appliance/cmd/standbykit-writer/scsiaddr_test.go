package main

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
)

// fakeSys builds a sysfs tree laid out as Linux lays it out (the paths
// and links seen under QEMU): /sys/block/<disk> links to the disk's
// directory under devices/, whose device link names the SCSI device
// directory host:channel:target:LUN; class/scsi_host/host<H> and
// class/sas_device/end_device-… link to their directories under
// devices/.
type fakeSys struct{ fstest.MapFS }

func newFakeSys() fakeSys { return fakeSys{fstest.MapFS{}} }

func (s fakeSys) link(name, target string) {
	s.MapFS[name] = &fstest.MapFile{Mode: fs.ModeSymlink, Data: []byte(target)}
}

func (s fakeSys) file(name, content string) {
	s.MapFS[name] = &fstest.MapFile{Data: []byte(content + "\n")}
}

// blockDisk adds whole disk name of size bytes, number dev, in
// directory dir (under devices/), its device link pointing at
// deviceLink (relative to dir).
func (s fakeSys) blockDisk(name, dev string, size int64, dir, deviceLink string) {
	s.link("block/"+name, "../"+dir)
	s.file(dir+"/dev", dev)
	s.file(dir+"/size", fmt.Sprint(size/512))
	s.file(dir+"/ro", "0")
	s.file(dir+"/removable", "0")
	s.link(dir+"/device", deviceLink)
}

// scsiHost adds SCSI host h under PCI function pci, driven by driver;
// it returns the host's directory.
func (s fakeSys) scsiHost(pci string, h int, driver string) string {
	dir := fmt.Sprintf("devices/pci0000:00/%s/host%d", pci, h)
	if driver == "ahci" {
		dir = fmt.Sprintf("devices/pci0000:00/%s/ata%d/host%d", pci, h+1, h)
	}
	s.link(fmt.Sprintf("class/scsi_host/host%d", h), fmt.Sprintf("../../%s/scsi_host/host%d", dir, h))
	s.file(fmt.Sprintf("%s/scsi_host/host%d/proc_name", dir, h), driver)
	return dir
}

// scsiDisk adds disk name at h:c:t:l under the host directory parent
// (a host, or a SAS end device).
func (s fakeSys) scsiDisk(name, dev string, size int64, parent string, h, c, t, l int) {
	hctl := fmt.Sprintf("%d:%d:%d:%d", h, c, t, l)
	sdev := fmt.Sprintf("%s/target%d:%d:%d/%s", parent, h, c, t, hctl)
	s.file(sdev+"/type", "0")
	s.file(sdev+"/scsi_device/"+hctl+"/dev", "")
	s.blockDisk(name, dev, size, sdev+"/block/"+name, "../../../"+hctl)
}

// sasDisk adds disk name on mptsas host h, host directory hostDir, as
// the SAS transport class numbers it: port and end device n, SCSI target
// n, on phy phy.
func (s fakeSys) sasDisk(name, dev string, size int64, hostDir string, h, n, phy int) {
	end := fmt.Sprintf("end_device-%d:%d", h, n)
	dir := fmt.Sprintf("%s/port-%d:%d/%s", hostDir, h, n, end)
	s.link("class/sas_device/"+end, "../../"+dir+"/sas_device/"+end)
	s.file(dir+"/sas_device/"+end+"/phy_identifier", fmt.Sprint(phy))
	s.file(dir+"/sas_device/"+end+"/scsi_target_id", fmt.Sprint(n))
	s.file(dir+"/sas_device/"+end+"/sas_address", fmt.Sprintf("0x5000c500000000%02x", n+1))
	s.scsiDisk(name, dev, size, dir, h, 0, n, 0)
}

// qemuSys is a tree with a disk on each kind of controller: pvscsi
// (host 0, disks at scsi-id 0, 1, 2, 9, 15 and a LUN 1 one), mptsas1068
// (host 1: scsi-id 3, 5, 6, numbered 0, 1, 2 by the SAS transport
// class), AHCI (hosts 2 and 3, one per port), NVMe and virtio.
func qemuSys() fakeSys {
	s := newFakeSys()
	pv := s.scsiHost("0000:00:02.0", 0, "vmw_pvscsi")
	for i, t := range []int{0, 1, 2, 9, 15} {
		s.scsiDisk(fmt.Sprintf("sd%c", 'a'+i), fmt.Sprintf("8:%d", 16*i), 1<<20, pv, 0, 0, t, 0)
	}
	s.scsiDisk("sdf", "8:80", 1<<20, pv, 0, 0, 4, 1)
	sas := s.scsiHost("0000:00:03.0", 1, "mptsas")
	for n, phy := range []int{3, 5, 6} {
		s.sasDisk(fmt.Sprintf("sd%c", 'g'+n), fmt.Sprintf("8:%d", 96+16*n), 1<<20, sas, 1, n, phy)
	}
	for i := range 2 {
		ahci := s.scsiHost("0000:00:1f.2", 2+i, "ahci")
		s.scsiDisk(fmt.Sprintf("sd%c", 'j'+i), fmt.Sprintf("8:%d", 144+16*i), 1<<20, ahci, 2+i, 0, 0, 0)
	}
	s.blockDisk("nvme0n1", "259:0", 1<<20, "devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1", "../../nvme0")
	s.file("devices/pci0000:00/0000:00:04.0/nvme/nvme0/model", "QEMU NVMe Ctrl")
	s.blockDisk("vda", "254:0", 1<<20, "devices/pci0000:00/0000:00:05.0/virtio2/block/vda", "../../../virtio2")
	return s
}

func TestDiskAddr(t *testing.T) {
	sys := qemuSys()
	disks, err := listDisks(sys)
	assert.NoError(t, err)
	var names []string
	for _, d := range disks {
		names = append(names, d.Name)
	}
	assert.Equal(t, "nvme0n1 sda sdb sdc sdd sde sdf sdg sdh sdi sdj sdk vda", strings.Join(names, " "), "the tree's disks are all listed")

	pv := func(t, l, unit int) *scsiAddr {
		return &scsiAddr{Host: 0, Target: t, LUN: l, Driver: "vmw_pvscsi", Unit: unit}
	}
	for name, want := range map[string]*scsiAddr{
		"sda": pv(0, 0, 0),
		"sdb": pv(1, 0, 1),
		"sdc": pv(2, 0, 2),
		"sdd": pv(9, 0, 9),
		"sde": pv(15, 0, 15),
		"sdf": pv(4, 1, -1), // LUN 1: not a disk esx attaches
		// mptsas: the unit is the phy, not the SAS transport's target.
		"sdg": {Host: 1, Target: 0, Driver: "mptsas", Unit: 3},
		"sdh": {Host: 1, Target: 1, Driver: "mptsas", Unit: 5},
		"sdi": {Host: 1, Target: 2, Driver: "mptsas", Unit: 6},
		// ATA disks are SCSI devices too, of no unit.
		"sdj":     {Host: 2, Driver: "ahci", Unit: -1},
		"sdk":     {Host: 3, Driver: "ahci", Unit: -1},
		"nvme0n1": nil,
		"vda":     nil,
		"sdz":     nil, // no such disk
	} {
		assert.Equal(t, want, diskAddr(sys, name), name)
	}
	assert.Equal(t, "1:0:2:0 on mptsas", diskAddr(sys, "sdi").String())

	// A SAS end device that cannot be told: no unit.
	sys.file("devices/pci0000:00/0000:00:03.0/host1/port-1:2/end_device-1:2/sas_device/end_device-1:2/phy_identifier", "many")
	assert.Equal(t, -1, diskAddr(sys, "sdi").Unit)
	sys.file("devices/pci0000:00/0000:00:03.0/host1/port-1:2/end_device-1:2/sas_device/end_device-1:2/phy_identifier", "6")
	sys.file("devices/pci0000:00/0000:00:03.0/host1/port-1:2/end_device-1:2/sas_device/end_device-1:2/scsi_target_id", "1")
	assert.Equal(t, -1, diskAddr(sys, "sdh").Unit, "two end devices of target 1")
	// Another driver: no unit.
	sys.file("devices/pci0000:00/0000:00:02.0/host0/scsi_host/host0/proc_name", "virtio_scsi")
	assert.Equal(t, &scsiAddr{Host: 0, Target: 1, Driver: "virtio_scsi", Unit: -1}, diskAddr(sys, "sdb"))
	// A tree without links (a file system that has none): no address.
	assert.Nil(t, diskAddr(sysTree(), "sda"))
}

func TestParseHCTL(t *testing.T) {
	hctl, ok := parseHCTL("2:0:15:0")
	assert.True(t, ok)
	assert.Equal(t, [4]int{2, 0, 15, 0}, hctl)
	for _, bad := range []string{"", "nvme0", "virtio2", "2:0:1", "2:0:1:0:0", "a:0:1:0", "2:0:-1:0", "2:0:1:99999999999", "end_device-0:1"} {
		_, ok := parseHCTL(bad)
		assert.False(t, ok, bad)
	}
}

func TestControllerUnits(t *testing.T) {
	sys := qemuSys()
	addrs := func(names ...string) []*scsiAddr {
		var out []*scsiAddr
		for _, n := range names {
			out = append(out, diskAddr(sys, n))
		}
		return out
	}
	for _, c := range []struct {
		name, payload string
		disks         []string
		want          []int
		why           string
	}{
		{"pvscsi", "sda", []string{"sdc", "sdb", "sdd", "sdf"}, []int{2, 1, 9, -1}, ""},
		{"disks on other adapters", "sda", []string{"sdb", "sdg", "sdj", "nvme0n1", "vda"}, []int{1, -1, -1, -1, -1}, ""},
		{"payload not at unit 0", "sdb", []string{"sda", "sdc"}, []int{-1, -1}, "is at unit 1, not 0"},
		{"payload at no unit", "sdf", []string{"sda", "sdc"}, []int{-1, -1}, "has no unit"},
		{"mptsas, payload on phy 3", "sdg", []string{"sdh", "sdi"}, []int{-1, -1}, "is at unit 3, not 0"},
		{"ahci", "sdj", []string{"sdk", "sda"}, []int{-1, -1}, "adapter (ahci) gives no units"},
		{"nvme", "nvme0n1", []string{"sda", "sdb"}, []int{-1, -1}, "no SCSI disk"},
	} {
		t.Run(c.name, func(t *testing.T) {
			units, why := controllerUnits(diskAddr(sys, c.payload), addrs(c.disks...))
			assert.Equal(t, c.want, units)
			if c.why == "" {
				assert.Empty(t, why)
			} else {
				assert.Contains(t, why, c.why)
			}
		})
	}

	// mptsas with the payload on phy 0: the targets by their phys.
	s := newFakeSys()
	host := s.scsiHost("0000:00:03.0", 0, "mptsas")
	for n, phy := range []int{0, 2, 5} {
		s.sasDisk(fmt.Sprintf("sd%c", 'a'+n), fmt.Sprintf("8:%d", 16*n), 1<<20, host, 0, n, phy)
	}
	units, why := controllerUnits(diskAddr(s, "sda"), []*scsiAddr{diskAddr(s, "sdc"), diskAddr(s, "sdb")})
	assert.Empty(t, why)
	assert.Equal(t, []int{5, 2}, units)
}

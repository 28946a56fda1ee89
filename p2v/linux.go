package p2v

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// LinuxInfo is what inspection learned of a Linux system.
type LinuxInfo struct {
	ID, VersionID, PrettyName string // from os-release
	IDLike                    []string
}

// volume is a partition (or a whole disk) of the machine, and what a
// Linux fstab can call it.
type volume struct {
	disk int
	part Partition // for a logical volume: Number 0 and the LV's size
	r    *io.SectionReader
	fs   fileSystem // nil when not a file system Linux inspection reads
	uuid string     // file-system or swap UUID, "" when unknown
	// lv names a logical volume ("vg/lv"); toDisk then maps its bytes to
	// the physical volumes' disks.
	lv     string
	toDisk func(off int64, data []byte) ([]Patch, error)
}

// patches places bytes of the volume on the disks.
func (v *volume) patches(off int64, data []byte, why string) ([]Patch, error) {
	if v.toDisk == nil {
		return []Patch{{Disk: v.disk, Offset: v.part.Start + off, Data: data, Why: why}}, nil
	}
	ps, err := v.toDisk(off, data)
	for i := range ps {
		ps[i].Why = why
	}
	return ps, err
}

// linuxDevice matches device names that do not survive the move to a VM:
// /dev/sda1, /dev/hdb2, /dev/vda3, /dev/xvda1, /dev/cciss/c0d0p1,
// /dev/nvme0n1p2 and /dev/disk/by-id/….
var linuxDevice = regexp.MustCompile(`^/dev/(?:(?:sd|hd|vd|xvd)([a-z])([0-9]*)|cciss/c[0-9]+d([0-9]+)(?:p([0-9]+))?|nvme([0-9]+)n1(?:p([0-9]+))?|disk/by-id/\S+)$`)

// resolveDevice finds the volume a device name means: disk by letter or
// number, partition by number. by-id names cannot be resolved offline.
func resolveDevice(dev string, vols []volume) (*volume, bool) {
	m := linuxDevice.FindStringSubmatch(dev)
	if m == nil {
		return nil, false
	}
	disk, part := -1, 0
	switch {
	case m[1] != "":
		disk = int(m[1][0] - 'a')
		part, _ = strconv.Atoi(m[2])
	case m[3] != "":
		disk, _ = strconv.Atoi(m[3])
		part, _ = strconv.Atoi(m[4])
	case m[5] != "":
		disk, _ = strconv.Atoi(m[5])
		part, _ = strconv.Atoi(m[6])
	default:
		// by-id names carry the physical disk's serial, which the image
		// does not record; with a single disk, "-partN" is still enough.
		n, ok := byIDPartition(dev)
		if !ok || diskCount(vols) != 1 {
			return nil, true
		}
		disk, part = 0, n
	}
	for i := range vols {
		if vols[i].disk == disk && vols[i].part.Number == part {
			return &vols[i], true
		}
	}
	return nil, true
}

var byIDPart = regexp.MustCompile(`-part([0-9]+)$`)

func byIDPartition(dev string) (int, bool) {
	m := byIDPart.FindStringSubmatch(dev)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// diskCount is the number of disks the volumes lie on.
func diskCount(vols []volume) int {
	n := 0
	for _, v := range vols {
		n = max(n, v.disk+1)
	}
	return n
}

// newVolume opens the file system of a volume once, and finds the UUID
// fstab would name it by: ext2/3/4, XFS, Linux swap.
func newVolume(disk int, part Partition, r *io.SectionReader) volume {
	v := volume{disk: disk, part: part, r: r}
	if fs, ok := openFileSystem(r, part.Size); ok {
		v.fs, v.uuid = fs, fs.UUID()
		return v
	}
	head := make([]byte, 4096)
	if _, err := r.ReadAt(head, 0); (err == nil || err == io.EOF) && string(head[4086:4096]) == "SWAPSPACE2" {
		v.uuid = formatUUID(head[1036:1052])
	}
	return v
}

func formatUUID(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// linuxRoot is the root file system found, with what patches it needs.
type linuxRoot struct {
	vol *volume
	fs  fileSystem
}

// inspectLinux looks for a Linux root file system among the volumes.
func (in Inspector) inspectLinux(plan *Plan, vols []volume) (bool, error) {
	for i := range vols {
		v := &vols[i]
		fs := v.fs
		if fs == nil {
			continue
		}
		osRelease, err := fs.ReadFile("/etc/os-release")
		if err != nil {
			if osRelease, err = fs.ReadFile("/usr/lib/os-release"); err != nil {
				continue
			}
		}
		if _, err := fs.ReadFile("/etc/fstab"); err != nil {
			continue
		}
		info := parseOSRelease(osRelease)
		plan.GuestID = info.guestID()
		return true, in.fixLinux(plan, linuxRoot{vol: v, fs: fs}, vols, info)
	}
	return false, nil
}

func (in Inspector) fixLinux(plan *Plan, root linuxRoot, vols []volume, info LinuxInfo) error {
	name := info.PrettyName
	if name == "" {
		name = info.ID + " " + info.VersionID
	}
	// fstab: device names become UUID=.
	fstab, _ := root.fs.ReadFile("/etc/fstab")
	newFstab, bootVol := rewriteFstab(plan, fstab, vols)
	if !bytes.Equal(fstab, newFstab) {
		rewrite(plan, root.vol, root.fs, "/etc/fstab", fstab, newFstab, name+": /etc/fstab names disks by device; the VM's disks may be named otherwise, so they are named by UUID")
	}
	// grub: root=/dev/… on the kernel command line.
	bootFS, bootPrefix, bootV := root.fs, "/boot", root.vol
	if bootVol != nil && bootVol.fs != nil {
		bootFS, bootPrefix, bootV = bootVol.fs, "", bootVol
	}
	for _, cfg := range []string{"/grub2/grub.cfg", "/grub/grub.cfg"} {
		p := bootPrefix + cfg
		old, err := bootFS.ReadFile(p)
		if err != nil {
			continue
		}
		neu := rewriteKernelRoot(old, vols)
		if !bytes.Equal(old, neu) {
			rewrite(plan, bootV, bootFS, p, old, neu, name+": the kernel command line in "+p+" names the root disk by device; it is named by UUID")
		}
	}
	// Network: rules and configuration bound to the physical MACs.
	const rules = "/etc/udev/rules.d/70-persistent-net.rules"
	if old, err := root.fs.ReadFile(rules); err == nil && bytes.Contains(old, []byte("ATTR{address}")) {
		neu := commentLines(old, func(line string) bool { return strings.Contains(line, "ATTR{address}") })
		rewrite(plan, root.vol, root.fs, rules, old, neu, name+": "+rules+" pins interface names to the physical NICs' MAC addresses; the VM's NICs would be renamed")
	}
	for _, dir := range []string{"/etc/sysconfig/network-scripts", "/etc/sysconfig/network"} {
		names, err := root.fs.List(dir)
		if err != nil {
			continue
		}
		for _, n := range names {
			if !strings.HasPrefix(n, "ifcfg-") || n == "ifcfg-lo" {
				continue
			}
			p := dir + "/" + n
			old, err := root.fs.ReadFile(p)
			if err != nil {
				continue
			}
			neu := commentLines(old, func(line string) bool {
				return strings.HasPrefix(strings.TrimSpace(line), "HWADDR=") || strings.HasPrefix(strings.TrimSpace(line), "MACADDR=")
			})
			if !bytes.Equal(old, neu) {
				rewrite(plan, root.vol, root.fs, p, old, neu, name+": "+p+" binds the interface to the physical NIC's MAC address (HWADDR); the VM's NIC has another")
			}
		}
	}
	if names, err := root.fs.List("/etc/netplan"); err == nil {
		for _, n := range names {
			b, err := root.fs.ReadFile("/etc/netplan/" + n)
			if err == nil && bytes.Contains(b, []byte("macaddress:")) {
				plan.warnf("/etc/netplan/%s matches interfaces by MAC address: after failover, edit it or the VM's NIC stays unconfigured", n)
			}
		}
	}
	in.chooseLinuxController(plan, bootFS, bootPrefix)
	return nil
}

// rewrite plans the patches that give a text file new content in its own
// blocks; shorter content is padded with newlines to the old length (a
// file may not shrink below its last block).
func rewrite(plan *Plan, v *volume, fs fileSystem, path string, old, neu []byte, why string) {
	if len(neu) < len(old) {
		neu = append(neu, bytes.Repeat([]byte{'\n'}, len(old)-len(neu))...)
	}
	ps, err := fs.Rewrite(path, neu)
	if err != nil {
		plan.warnf("%s: cannot be rewritten offline (%v): %s", path, err, why)
		return
	}
	for _, p := range ps {
		dps, err := v.patches(p.Offset, p.Data, why)
		if err != nil {
			plan.warnf("%s: placing a patch: %v", path, err)
			return
		}
		plan.Patches = append(plan.Patches, dps...)
	}
}

// rewriteFstab names devices by UUID; it returns the new content and the
// volume mounted on /boot, if it is a separate one.
func rewriteFstab(plan *Plan, fstab []byte, vols []volume) ([]byte, *volume) {
	var out bytes.Buffer
	var boot *volume
	for line := range strings.Lines(string(fstab)) {
		fields := strings.Fields(line)
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			out.WriteString(line)
			continue
		}
		dev := fields[0]
		var v *volume
		switch {
		case strings.HasPrefix(dev, "UUID="):
			v = byUUID(vols, strings.Trim(strings.TrimPrefix(dev, "UUID="), `"`))
		default:
			var ours bool
			v, ours = resolveDevice(dev, vols)
			if ours && (v == nil || v.uuid == "") {
				plan.warnf("/etc/fstab: %s (%s) cannot be resolved offline: it may not exist on the VM", dev, fields[1])
				v = nil
			} else if v != nil {
				line = strings.Replace(line, dev, "UUID="+v.uuid, 1)
			}
		}
		if fields[1] == "/boot" && v != nil {
			boot = v
		}
		out.WriteString(line)
	}
	return out.Bytes(), boot
}

func byUUID(vols []volume, uuid string) *volume {
	for i := range vols {
		if vols[i].uuid != "" && strings.EqualFold(vols[i].uuid, uuid) {
			return &vols[i]
		}
	}
	return nil
}

var kernelRoot = regexp.MustCompile(`\broot=(/dev/\S+)`)

// rewriteKernelRoot names the root device of kernel command lines by UUID.
func rewriteKernelRoot(cfg []byte, vols []volume) []byte {
	return kernelRoot.ReplaceAllFunc(cfg, func(m []byte) []byte {
		dev := string(kernelRoot.FindSubmatch(m)[1])
		if v, _ := resolveDevice(dev, vols); v != nil && v.uuid != "" {
			return []byte("root=UUID=" + v.uuid)
		}
		return m
	})
}

// commentLines puts "#" before the lines match selects.
func commentLines(b []byte, match func(string) bool) []byte {
	var out bytes.Buffer
	for line := range strings.Lines(string(b)) {
		if match(line) && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out.WriteByte('#')
		}
		out.WriteString(line)
	}
	return out.Bytes()
}

func parseOSRelease(b []byte) LinuxInfo {
	var info LinuxInfo
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			info.ID = strings.ToLower(v)
		case "VERSION_ID":
			info.VersionID = v
		case "PRETTY_NAME":
			info.PrettyName = v
		case "ID_LIKE":
			info.IDLike = strings.Fields(strings.ToLower(v))
		}
	}
	return info
}

// guestID maps a distribution to ESXi's guest identifier.
func (l LinuxInfo) guestID() string {
	major, _, _ := strings.Cut(l.VersionID, ".")
	n, _ := strconv.Atoi(major)
	switch l.ID {
	case "rhel":
		if n >= 7 && n <= 9 {
			return fmt.Sprintf("rhel%d_64Guest", n)
		}
	case "centos":
		if n >= 7 && n <= 9 {
			return fmt.Sprintf("centos%d_64Guest", n)
		}
	case "rocky":
		return "rockylinux_64Guest"
	case "almalinux":
		return "almalinux_64Guest"
	case "ol":
		if n >= 7 && n <= 9 {
			return fmt.Sprintf("oracleLinux%d_64Guest", n)
		}
	case "ubuntu":
		return "ubuntu64Guest"
	case "debian":
		if n >= 10 && n <= 12 {
			return fmt.Sprintf("debian%d_64Guest", n)
		}
	case "sles", "sled", "sles_sap":
		if n == 12 || n == 15 {
			return fmt.Sprintf("sles%d_64Guest", n)
		}
	case "opensuse-leap", "opensuse":
		return "opensuse64Guest"
	}
	for _, like := range l.IDLike {
		switch like {
		case "rhel", "fedora":
			if n >= 7 && n <= 9 {
				return fmt.Sprintf("rhel%d_64Guest", n)
			}
		case "ubuntu":
			return "ubuntu64Guest"
		case "debian":
			return "debian11_64Guest"
		}
	}
	return "otherLinux64Guest"
}

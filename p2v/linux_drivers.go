package p2v

import (
	"slices"
	"strings"

	"github.com/standbykit/standbykit/p2v/initramfs"
)

// linuxDrivers are the kernel modules that drive each VM controller, in
// order of preference.
var linuxDrivers = []struct {
	module     string
	controller Controller
}{
	{"vmw_pvscsi", ControllerPVSCSI},
	{"mptsas", ControllerLSILogicSAS},
	{"ahci", ControllerSATA},
	{"nvme", ControllerNVMe},
}

// maxInitramfs bounds the decompressed bytes of an initramfs read: the
// image is read in place and its files' data discarded as it streams, so
// this bounds time (seconds), not memory. Real images with firmware
// unpack to a few hundred MiB.
const maxInitramfs = 2 << 30

// chooseLinuxController picks the controller whose driver the newest
// kernel's initramfs holds (or the kernel has built in).
func (in Inspector) chooseLinuxController(plan *Plan, boot fileSystem, prefix string) {
	dir := prefix
	if dir == "" {
		dir = "/"
	}
	entries, err := boot.List(dir)
	if err != nil {
		plan.warnf("%s: %v: the boot disk controller cannot be chosen from the guest's drivers", dir, err)
		plan.Controller = fallback(in.Controller)
		return
	}
	var images []string
	for _, n := range entries {
		if strings.HasPrefix(n, "initramfs-") && strings.HasSuffix(n, ".img") && !strings.Contains(n, "kdump") && !strings.Contains(n, "rescue") ||
			strings.HasPrefix(n, "initrd.img-") || strings.HasPrefix(n, "initrd-") {
			images = append(images, n)
		}
	}
	if len(images) == 0 {
		plan.warnf("no initramfs in /boot: the boot disk controller cannot be chosen from the guest's drivers")
		plan.Controller = fallback(in.Controller)
		return
	}
	// The newest kernel is the one that boots by default on most
	// distributions; version strings sort well enough for that.
	slices.SortFunc(images, func(a, b string) int { return compareVersions(b, a) })
	name := strings.TrimSuffix(prefix, "/") + "/" + images[0]
	data, err := boot.OpenFile(name)
	if err != nil {
		plan.warnf("%s: %v: the boot disk controller cannot be chosen from the guest's drivers", name, err)
		plan.Controller = fallback(in.Controller)
		return
	}
	ar, err := initramfs.Read(data, maxInitramfs)
	if err != nil {
		plan.warnf("%s: %v: the boot disk controller cannot be chosen from the guest's drivers", name, err)
		plan.Controller = fallback(in.Controller)
		return
	}
	for _, d := range linuxDrivers {
		if in.Controller != "" && d.controller != in.Controller {
			continue
		}
		if ar.Has(d.module) {
			plan.Controller = d.controller
			return
		}
	}
	if in.Controller != "" {
		plan.warnf("%s has no %s driver for the %s controller asked for: the VM will not find its boot disk", name, in.Controller, in.Controller)
		plan.Controller = in.Controller
		return
	}
	plan.warnf("%s holds no driver for a VM disk controller (vmw_pvscsi, mptsas, ahci, nvme): rebuild it with one before failover", name)
	plan.Controller = ControllerLSILogicSAS
}

func fallback(c Controller) Controller {
	if c != "" {
		return c
	}
	return ControllerLSILogicSAS
}

// compareVersions orders strings with embedded numbers numerically.
func compareVersions(a, b string) int {
	for a != "" && b != "" {
		na, ra := leadingNumber(a)
		nb, rb := leadingNumber(b)
		if na >= 0 && nb >= 0 {
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			if a[0] < b[0] {
				return -1
			}
			return 1
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func leadingNumber(s string) (int, string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 9 {
		return -1, s
	}
	n := 0
	for _, c := range s[:i] {
		n = n*10 + int(c-'0')
	}
	return n, s[i:]
}

package bootcheck

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQemuArgs(t *testing.T) {
	dir := t.TempDir()
	raw, qcow, vmdk, desc := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.qcow2"), filepath.Join(dir, "c.vmdk"), filepath.Join(dir, "d.vmdk")
	require.NoError(t, os.WriteFile(raw, make([]byte, 4096), 0o644))
	require.NoError(t, os.WriteFile(qcow, []byte("QFI\xfb\x00\x00\x00\x03"), 0o644))
	require.NoError(t, os.WriteFile(vmdk, []byte("KDMV\x01\x00\x00\x00"), 0o644))
	require.NoError(t, os.WriteFile(desc, []byte("# Disk DescriptorFile\nversion=1\n"), 0o644))

	o := LocalOptions{Disks: []Disk{{Path: raw}, {Path: qcow}, {Path: vmdk}, {Path: desc}, {Path: raw, Format: "vpc"}}, Accel: "tcg", MemoryMiB: 512, CPUs: 1}
	a, cleanup, err := o.qemuArgs()
	require.NoError(t, err)
	defer cleanup()
	line := strings.Join(a.args, " ")
	for _, want := range []string{
		"-machine pc -accel tcg -m 512 -smp 1 -nodefaults -vga std -display none -no-shutdown",
		"-qmp unix:" + filepath.Join(a.work, "qmp.sock") + ",server=on,wait=off",
		"-drive if=none,id=d0,format=raw,file=" + raw + ",snapshot=on",
		"-drive if=none,id=d1,format=qcow2,file=" + qcow + ",snapshot=on",
		"-drive if=none,id=d2,format=vmdk,file=" + vmdk + ",snapshot=on",
		"-drive if=none,id=d3,format=vmdk,file=" + desc + ",snapshot=on",
		"-drive if=none,id=d4,format=vpc,file=" + raw + ",snapshot=on",
		// pvscsi by default, the first disk the one to boot.
		"-device pvscsi,id=c -device scsi-hd,bus=c.0,drive=d0,bootindex=0 -device scsi-hd,bus=c.0,drive=d1 ",
	} {
		assert.Contains(t, line, want)
	}
	for _, absent := range []string{"-netdev", "-nic", "-net ", "pflash"} {
		assert.NotContains(t, line, absent)
	}
	assert.DirExists(t, a.work)
	cleanup()
	assert.NoDirExists(t, a.work)

	for ctrl, want := range map[string]string{
		"lsilogic-sas": "-device mptsas1068,id=c", "lsisas": "-device mptsas1068,id=c",
		"sata": "-device ahci,id=ahci -device ide-hd,bus=ahci.0,drive=d0,bootindex=0",
		"ahci": "-device ahci,id=ahci", "nvme": "-device nvme,serial=sbk-d0,drive=d0,bootindex=0",
	} {
		o := LocalOptions{Disks: []Disk{{Path: raw}}, Controller: ctrl, Accel: "tcg"}
		a, cleanup, err := o.qemuArgs()
		require.NoError(t, err, ctrl)
		assert.Contains(t, strings.Join(a.args, " "), want, ctrl)
		cleanup()
	}
}

func TestQemuArgsEFI(t *testing.T) {
	dir := t.TempDir()
	raw, code, vars := filepath.Join(dir, "a.img"), filepath.Join(dir, "code.fd"), filepath.Join(dir, "vars.fd")
	for _, f := range []string{raw, code, vars} {
		require.NoError(t, os.WriteFile(f, []byte(f), 0o644))
	}
	o := LocalOptions{Disks: []Disk{{Path: raw}}, Firmware: EFI, OVMFCode: code, OVMFVars: vars, Accel: "tcg"}
	a, cleanup, err := o.qemuArgs()
	require.NoError(t, err)
	defer cleanup()
	line := strings.Join(a.args, " ")
	copied := filepath.Join(a.work, "vars.fd")
	assert.Contains(t, line, "-drive if=pflash,format=raw,unit=0,readonly=on,file="+code+" -drive if=pflash,format=raw,unit=1,file="+copied)
	// The machine writes its variables into a copy.
	data, err := os.ReadFile(copied)
	require.NoError(t, err)
	assert.Equal(t, vars, string(data))

	// Without OVMF anywhere, EFI is refused as unavailable.
	saved := ovmfPlaces
	ovmfPlaces = [][2]string{{filepath.Join(dir, "none-code.fd"), filepath.Join(dir, "none-vars.fd")}}
	defer func() { ovmfPlaces = saved }()
	_, _, err = LocalOptions{Disks: []Disk{{Path: raw}}, Firmware: EFI, Accel: "tcg"}.qemuArgs()
	assert.ErrorIs(t, err, ErrUnavailable)
	ovmfPlaces = [][2]string{{code, vars}}
	a, cleanup2, err := LocalOptions{Disks: []Disk{{Path: raw}}, Firmware: EFI, Accel: "tcg"}.qemuArgs()
	require.NoError(t, err)
	defer cleanup2()
	assert.Contains(t, strings.Join(a.args, " "), "unit=0,readonly=on,file="+code)
}

func TestLocalRefuses(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "a.img")
	require.NoError(t, os.WriteFile(raw, make([]byte, 512), 0o644))
	for name, o := range map[string]LocalOptions{
		"no disks":      {Dir: dir},
		"no dir":        {Disks: []Disk{{Path: raw}}},
		"controller":    {Disks: []Disk{{Path: raw}}, Dir: dir, Controller: "buslogic"},
		"firmware":      {Disks: []Disk{{Path: raw}}, Dir: dir, Firmware: "coreboot"},
		"missing disk":  {Disks: []Disk{{Path: filepath.Join(dir, "none.img")}}, Dir: dir},
		"comma":         {Disks: []Disk{{Path: raw, Format: "raw,file=x"}}, Dir: dir},
		"accel":         {Disks: []Disk{{Path: raw}}, Dir: dir, Accel: "kvm,x=y"},
		"half of OVMF":  {Disks: []Disk{{Path: raw}}, Dir: dir, Firmware: EFI, OVMFCode: raw},
		"missing qemu":  {Disks: []Disk{{Path: raw}}, Dir: dir, Qemu: filepath.Join(dir, "no-qemu")},
		"not a program": {Disks: []Disk{{Path: raw}}, Dir: dir, Qemu: raw},
	} {
		v, shot, err := Local(t.Context(), o)
		assert.Error(t, err, name)
		assert.Empty(t, shot, name)
		assert.Zero(t, v, name)
		if name == "missing qemu" || name == "not a program" {
			assert.True(t, errors.Is(err, ErrUnavailable), "%s: %v", name, err)
		}
	}

	// A QEMU that exits at once: its message in the error.
	fake := filepath.Join(dir, "qemu")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho 'qemu: no such machine' >&2\nexit 1\n"), 0o755))
	_, shot, err := Local(t.Context(), LocalOptions{Disks: []Disk{{Path: raw}}, Dir: dir, Qemu: fake})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "qemu: no such machine")
	assert.Empty(t, shot)
}

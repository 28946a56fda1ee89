package appliancevm

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAttach(t *testing.T) {
	assert.Equal(t, []string{"ahci", "lsisas", "nvme", "pvscsi"}, Controllers())
	assert.True(t, HasUnits("pvscsi"))
	assert.True(t, HasUnits("lsisas"))
	assert.False(t, HasUnits("ahci"))
	assert.False(t, HasUnits("nvme"))
	assert.False(t, HasUnits("floppy"))

	args, err := Attach("pvscsi", "/a.img", "/b.img")
	require.NoError(t, err)
	assert.Equal(t, "-drive if=none,id=d0,format=raw,file=/a.img -drive if=none,id=d1,format=raw,file=/b.img "+
		"-device pvscsi,id=c -device scsi-hd,bus=c.0,drive=d0 -device scsi-hd,bus=c.0,drive=d1", strings.Join(args, " "))

	args, err = AttachAt("pvscsi", []int{1, 0, 2}, "/t0.img", "/p.img", "/t1.img")
	require.NoError(t, err)
	assert.Contains(t, strings.Join(args, " "), "-device scsi-hd,bus=c.0,drive=d0,scsi-id=1 -device scsi-hd,bus=c.0,drive=d1,scsi-id=0 -device scsi-hd,bus=c.0,drive=d2,scsi-id=2")
	args, err = AttachAt("lsisas", []int{5, 0}, "/t0.img", "/p.img")
	require.NoError(t, err)
	assert.Contains(t, strings.Join(args, " "), "-device mptsas1068,id=c -device scsi-hd,bus=c.0,drive=d0,wwn=0x5000c50000000001,scsi-id=5 -device scsi-hd,bus=c.0,drive=d1,wwn=0x5000c50000000002,scsi-id=0")

	args, err = AttachDrives("ahci", Drive{File: "/top.vmdk", Format: "vmdk", Snapshot: true, Boot: true}, Drive{File: "/data.img"})
	require.NoError(t, err)
	assert.Equal(t, "-drive if=none,id=d0,format=vmdk,file=/top.vmdk,snapshot=on -drive if=none,id=d1,format=raw,file=/data.img "+
		"-device ahci,id=ahci -device ide-hd,bus=ahci.0,drive=d0,bootindex=0 -device ide-hd,bus=ahci.1,drive=d1", strings.Join(args, " "))
	args, err = AttachDrives("lsisas", Drive{File: "/a.qcow2", Format: "qcow2", Boot: true})
	require.NoError(t, err)
	assert.Contains(t, strings.Join(args, " "), "-device scsi-hd,bus=c.0,drive=d0,wwn=0x5000c50000000001,bootindex=0")
	_, err = AttachDrives("nvme", Drive{File: "/a.img", Format: "raw,file=/etc/passwd"})
	assert.Error(t, err)

	for _, c := range []struct {
		controller string
		units      []int
		files      []string
	}{
		{"ahci", []int{0}, []string{"/a.img"}},
		{"nvme", []int{0}, []string{"/a.img"}},
		{"pvscsi", []int{0}, []string{"/a.img", "/b.img"}},
		{"scsi", nil, []string{"/a.img"}},
		{"pvscsi", nil, []string{"/a,b.img"}},
	} {
		_, err := AttachAt(c.controller, c.units, c.files...)
		assert.Error(t, err, "%+v", c)
	}
}

package kmod

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bookworm is the part of Debian 12's modules.dep (6.1 kernel) the
// appliance uses, as depmod writes it.
const bookworm = `kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/sd_mod.ko: kernel/block/t10-pi.ko kernel/lib/crc64-rocksoft.ko kernel/lib/crc-t10dif.ko kernel/crypto/crct10dif_common.ko kernel/lib/crc64.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/block/t10-pi.ko: kernel/lib/crc64-rocksoft.ko kernel/lib/crc-t10dif.ko kernel/crypto/crct10dif_common.ko kernel/lib/crc64.ko
kernel/lib/crc64-rocksoft.ko: kernel/lib/crc64.ko
kernel/lib/crc-t10dif.ko: kernel/crypto/crct10dif_common.ko
kernel/crypto/crct10dif_common.ko:
kernel/lib/crc64.ko:
kernel/drivers/nvme/host/nvme-core.ko.xz: kernel/block/t10-pi.ko kernel/lib/crc64-rocksoft.ko kernel/lib/crc-t10dif.ko kernel/crypto/crct10dif_common.ko kernel/lib/crc64.ko
kernel/drivers/nvme/host/nvme.ko.xz: kernel/drivers/nvme/host/nvme-core.ko.xz kernel/block/t10-pi.ko kernel/lib/crc64-rocksoft.ko kernel/lib/crc-t10dif.ko kernel/crypto/crct10dif_common.ko kernel/lib/crc64.ko

# comment
kernel/drivers/scsi/vmw_pvscsi.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
`

func names(ms []*Module) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/nvme/host/nvme-core.ko":      "nvme_core",
		"kernel/drivers/nvme/host/nvme-core.ko.xz":   "nvme_core",
		"kernel/drivers/scsi/sd_mod.ko.zst":          "sd_mod",
		"crc-t10dif":                                 "crc_t10dif",
		"kernel/drivers/message/fusion/mptsas.ko.gz": "mptsas",
	} {
		assert.Equal(t, want, Name(in), in)
	}
}

func TestParseOrder(t *testing.T) {
	d, err := Parse([]byte(bookworm))
	require.NoError(t, err)
	assert.Len(t, d, 11)
	assert.Equal(t, "kernel/drivers/nvme/host/nvme-core.ko.xz", d["nvme_core"].Path)
	assert.Empty(t, d["scsi_common"].Deps)

	order, err := d.Order("vmw_pvscsi", "nvme", "sd_mod")
	require.NoError(t, err)
	assert.Equal(t, []string{
		"crc64", "crc64_rocksoft", "crct10dif_common", "crc_t10dif", "t10_pi", "nvme_core", "nvme",
		"scsi_common", "scsi_mod", "sd_mod", "vmw_pvscsi",
	}, names(order))
	pos := map[string]int{}
	for i, m := range order {
		pos[m.Name] = i
	}
	for _, m := range order {
		for _, dep := range m.Deps {
			assert.Less(t, pos[dep], pos[m.Name], "%s before %s", dep, m.Name)
		}
	}

	all, err := d.Order(d.All()...)
	require.NoError(t, err)
	assert.Len(t, all, 11)

	_, err = d.Order("ahci")
	assert.ErrorContains(t, err, "no module ahci")
}

func TestParseErrors(t *testing.T) {
	for _, text := range []string{
		"kernel/a.ko kernel/b.ko\n",
		": kernel/b.ko\n",
		"kernel/a.ko:\nkernel/x/a.ko:\n",
	} {
		_, err := Parse([]byte(text))
		assert.Error(t, err, text)
	}
}

func TestOrderErrors(t *testing.T) {
	d, err := Parse([]byte("a.ko: b.ko\nb.ko: c.ko\nc.ko: a.ko\nd.ko: e.ko\n"))
	require.NoError(t, err)
	_, err = d.Order("a")
	assert.ErrorContains(t, err, "cycle: a → b → c → a")
	_, err = d.Order("d")
	assert.ErrorContains(t, err, "module d needs e")
}

func TestFormat(t *testing.T) {
	mods := []*Module{
		{Name: "scsi_common", Path: "kernel/drivers/scsi/scsi_common.ko"},
		{Name: "scsi_mod", Path: "kernel/drivers/scsi/scsi_mod.ko", Deps: []string{"scsi_common"}},
		{Name: "libata", Path: "kernel/drivers/ata/libata.ko", Deps: []string{"scsi_mod", "scsi_common"}},
		{Name: "libahci", Path: "kernel/drivers/ata/libahci.ko", Deps: []string{"libata"}},
		{Name: "ahci", Path: "kernel/drivers/ata/ahci.ko", Deps: []string{"libahci", "libata"}},
	}
	text, err := Format(mods)
	require.NoError(t, err)
	assert.Equal(t, `kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/ata/libata.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/ata/libahci.ko: kernel/drivers/ata/libata.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/ata/ahci.ko: kernel/drivers/ata/libahci.ko kernel/drivers/ata/libata.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
`, string(text))

	back, err := Parse(text)
	require.NoError(t, err)
	order, err := back.Order("ahci")
	require.NoError(t, err)
	assert.Equal(t, []string{"scsi_common", "scsi_mod", "libata", "libahci", "ahci"}, names(order))

	_, err = Format(mods[1:])
	assert.ErrorContains(t, err, "scsi_common")
}

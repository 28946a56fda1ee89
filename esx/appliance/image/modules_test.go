package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"

	"github.com/standbykit/standbykit/esx/appliance/internal/kmod"
	"github.com/standbykit/standbykit/p2v/initramfs"
)

// fakeKO returns a minimal relocatable ELF file with a .modinfo section
// holding info ("key=value" strings), which is all the module selection
// reads of a module.
func fakeKO(info ...string) []byte {
	modinfo := []byte(strings.Join(info, "\x00") + "\x00")
	shstrtab := []byte("\x00.modinfo\x00.shstrtab\x00")
	le := binary.LittleEndian
	var b bytes.Buffer
	hdr := make([]byte, 64)
	copy(hdr, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(hdr[16:], 1)  // ET_REL
	le.PutUint16(hdr[18:], 62) // EM_X86_64
	le.PutUint32(hdr[20:], 1)
	shoff := (64 + len(modinfo) + len(shstrtab) + 7) &^ 7
	le.PutUint64(hdr[40:], uint64(shoff))
	le.PutUint16(hdr[52:], 64) // e_ehsize
	le.PutUint16(hdr[58:], 64) // e_shentsize
	le.PutUint16(hdr[60:], 3)  // e_shnum
	le.PutUint16(hdr[62:], 2)  // e_shstrndx
	b.Write(hdr)
	b.Write(modinfo)
	b.Write(shstrtab)
	b.Write(make([]byte, shoff-b.Len()))
	section := func(name, typ uint32, off, size int) {
		s := make([]byte, 64)
		le.PutUint32(s[0:], name)
		le.PutUint32(s[4:], typ)
		le.PutUint64(s[24:], uint64(off))
		le.PutUint64(s[32:], uint64(size))
		le.PutUint64(s[48:], 1)
		b.Write(s)
	}
	section(0, 0, 0, 0)
	section(1, 1, 64, len(modinfo))                // .modinfo, PROGBITS
	section(10, 3, 64+len(modinfo), len(shstrtab)) // .shstrtab, STRTAB
	return b.Bytes()
}

func compress(t *testing.T, ext string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	switch ext {
	case ".xz":
		w, err := xz.NewWriter(&b)
		require.NoError(t, err)
		_, _ = w.Write(data)
		require.NoError(t, w.Close())
	case ".zst":
		w, err := zstd.NewWriter(&b)
		require.NoError(t, err)
		_, _ = w.Write(data)
		require.NoError(t, w.Close())
	case ".gz":
		w := gzip.NewWriter(&b)
		_, _ = w.Write(data)
		require.NoError(t, w.Close())
	default:
		return data
	}
	return b.Bytes()
}

const fakeVersion = "6.1.0-99-amd64"

// fakeKernel writes a kernel package tree with the appliance's modules,
// compressed in various ways, sd_mod built in, and a modules.dep if dep.
func fakeKernel(t *testing.T, dep bool) Kernel {
	t.Helper()
	root := t.TempDir()
	k := Kernel{Root: root, Version: fakeVersion}
	write := func(rel string, data []byte) {
		p := filepath.Join(k.ModulesDir(), rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, data, 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "boot"), 0o755))
	require.NoError(t, os.WriteFile(k.Vmlinuz(), []byte("vmlinuz"), 0o644))
	mods := []struct{ path, depends string }{
		{"kernel/drivers/scsi/scsi_common.ko", ""},
		{"kernel/drivers/scsi/scsi_mod.ko.xz", "scsi_common"},
		{"kernel/drivers/scsi/vmw_pvscsi.ko.zst", "scsi_mod"},
		{"kernel/drivers/scsi/scsi_transport_sas.ko.gz", "scsi_mod"},
		{"kernel/drivers/message/fusion/mptbase.ko", ""},
		{"kernel/drivers/message/fusion/mptscsih.ko", "scsi_mod,mptbase,scsi_common"},
		{"kernel/drivers/message/fusion/mptsas.ko", "mptbase,scsi_transport_sas,mptscsih,scsi_mod,scsi_common"},
		{"kernel/drivers/ata/libata.ko.xz", "scsi_mod,scsi_common"},
		{"kernel/drivers/ata/libahci.ko.xz", "libata"},
		{"kernel/drivers/ata/ahci.ko.xz", "libahci,libata"},
		{"kernel/lib/crc-t10dif.ko", ""},
		{"kernel/drivers/nvme/host/nvme-core.ko", "crc-t10dif"},
		{"kernel/drivers/nvme/host/nvme.ko", "nvme-core"},
		{"kernel/drivers/net/e1000.ko", ""},
	}
	var deps []*kmod.Module
	for _, m := range mods {
		name := kmod.Name(m.path)
		ext := filepath.Ext(m.path)
		write(m.path, compress(t, ext, fakeKO("license=GPL", "depends="+m.depends, "name="+name, "vermagic="+fakeVersion+" SMP")))
		km := &kmod.Module{Name: name, Path: m.path}
		for _, d := range strings.Split(m.depends, ",") {
			if d != "" {
				km.Deps = append(km.Deps, kmod.Name(d))
			}
		}
		deps = append(deps, km)
	}
	write("modules.builtin", []byte("kernel/drivers/scsi/sd_mod.ko\nkernel/fs/ext4/ext4.ko\n"))
	if dep {
		text, err := kmod.Format(deps)
		require.NoError(t, err)
		write("modules.dep", text)
	}
	return k
}

func TestSelect(t *testing.T) {
	for _, dep := range []bool{false, true} {
		k := fakeKernel(t, dep)
		found, err := FindKernel(k.Root)
		require.NoError(t, err)
		assert.Equal(t, k, found)

		sel, err := k.Select(DefaultModules)
		require.NoError(t, err, "modules.dep %v", dep)
		var names []string
		for _, m := range sel.Modules {
			names = append(names, m.Name)
		}
		assert.Equal(t, []string{
			"scsi_common", "scsi_mod", "libata", "libahci", "ahci",
			"mptbase", "mptscsih", "scsi_transport_sas", "mptsas",
			"crc_t10dif", "nvme_core", "nvme", "vmw_pvscsi",
		}, names, "modules.dep %v", dep)
		assert.Equal(t, []string{"sd_mod"}, sel.Builtin)

		for _, m := range sel.Modules {
			data, err := k.ModuleData(m.Path)
			require.NoError(t, err, m.Path)
			info, err := Modinfo(data)
			require.NoError(t, err, m.Path)
			assert.Equal(t, m.Name, info["name"])
		}

		_, err = k.Select([]string{"virtio_blk"})
		assert.ErrorContains(t, err, "no module virtio_blk")
	}
	_, err := Modinfo([]byte("not an ELF file"))
	assert.Error(t, err)
	_, err = Modinfo(fakeKO()[:64])
	assert.Error(t, err)
	_, err = FindKernel(t.TempDir())
	assert.ErrorContains(t, err, "no kernel")

	k := fakeKernel(t, false)
	other := Kernel{Root: k.Root, Version: "6.1.0-98-amd64"}
	require.NoError(t, os.MkdirAll(other.ModulesDir(), 0o755))
	require.NoError(t, os.WriteFile(other.Vmlinuz(), nil, 0o644))
	_, err = FindKernel(k.Root)
	assert.ErrorContains(t, err, "several kernels")
}

// checkInitrd reads an initrd Build made, with p2v/initramfs, and checks
// it holds the writer as /init, the mount points, /dev/console, the
// modules listed in load order by its modules.dep.
func checkInitrd(t *testing.T, res *Result, init []byte) {
	t.Helper()
	f, err := os.Open(res.Initrd)
	require.NoError(t, err)
	defer f.Close()
	a, err := initramfs.Read(f, 0)
	require.NoError(t, err)
	require.Len(t, a.Segments, 1)
	assert.Equal(t, "gzip", a.Segments[0].Format)
	assert.Equal(t, []string{res.Kernel.Version}, a.KernelVersions())
	for _, m := range res.Modules {
		assert.True(t, a.Has(m), m)
	}
	assert.Len(t, a.Modules(), len(res.Modules))
	for _, d := range []string{"dev", "proc", "sys"} {
		e, ok := a.Lookup(d)
		require.True(t, ok, d)
		assert.True(t, e.Mode.IsDir(), d)
	}
	console, ok := a.Lookup("dev/console")
	require.True(t, ok)
	assert.NotZero(t, console.Mode&os.ModeCharDevice)
	e, ok := a.Lookup("init")
	require.True(t, ok)
	assert.Equal(t, os.FileMode(0o755), e.Mode)
	assert.Equal(t, int64(len(init)), e.Size)

	_, err = f.Seek(0, 0)
	require.NoError(t, err)
	text, err := initramfs.ReadFile(f, 0, "lib/modules/"+res.Kernel.Version+"/modules.dep")
	require.NoError(t, err)
	deps, err := kmod.Parse(text)
	require.NoError(t, err)
	order, err := deps.Order(deps.All()...)
	require.NoError(t, err)
	var names []string
	for _, m := range order {
		names = append(names, m.Name)
		assert.True(t, strings.HasSuffix(m.Path, ".ko"), "%s is decompressed", m.Path)
	}
	assert.ElementsMatch(t, res.Modules, names)
}

func TestBuildFake(t *testing.T) {
	k := fakeKernel(t, false)
	out := t.TempDir()
	writer := filepath.Join(t.TempDir(), "writer")
	init := bytes.Repeat([]byte("init"), 1000)
	require.NoError(t, os.WriteFile(writer, init, 0o755))
	var log bytes.Buffer
	res, err := Build(context.Background(), Options{Out: out, KernelRoot: k.Root, Writer: writer, Log: &log})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(out, "vmlinuz"), res.Vmlinuz)
	assert.Equal(t, filepath.Join(out, "initrd.img"), res.Initrd)
	assert.Equal(t, []string{"sd_mod"}, res.Builtin)
	assert.Len(t, res.Files, 2)
	vmlinuz, err := os.ReadFile(res.Vmlinuz)
	require.NoError(t, err)
	assert.Equal(t, "vmlinuz", string(vmlinuz))
	checkInitrd(t, res, init)
	assert.Contains(t, log.String(), "kernel "+fakeVersion)

	// The same inputs make the same initrd.
	first, err := os.ReadFile(res.Initrd)
	require.NoError(t, err)
	_, err = Build(context.Background(), Options{Out: out, KernelRoot: k.Root, Writer: writer})
	require.NoError(t, err)
	second, err := os.ReadFile(res.Initrd)
	require.NoError(t, err)
	assert.Equal(t, first, second)
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "no temporary file left")

	_, err = Build(context.Background(), Options{Out: out, KernelRoot: k.Root, Writer: writer, Modules: []string{"e1000", "virtio_net"}})
	assert.ErrorContains(t, err, "virtio_net")
	_, err = Build(context.Background(), Options{KernelRoot: k.Root})
	assert.Error(t, err)
}

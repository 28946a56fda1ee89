package initramfs

import (
	"bytes"
	"errors"
	"github.com/standbykit/standbykit/internal/oracle"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// earlyCPIO is an uncompressed early-microcode archive made with the cpio
// tool, as dracut and mkinitramfs put in front of the compressed one.
func earlyCPIO(t testing.TB) []byte {
	t.Helper()
	root := t.TempDir()
	writeFixture(t, root, map[string]string{
		"kernel/x86/microcode/GenuineIntel.bin": pseudo(9000, 7),
		"early_cpio":                            "1\n",
	})
	return cpioCreate(t, root, "newc")
}

// checkFixture checks what Read found against the fixture and the cpio -t
// listing want.
func checkFixture(t *testing.T, fx *fixture, a *Archive, want []string) {
	t.Helper()
	require.Equal(t, want, names(a), "entry list differs from cpio -t")
	assert.Equal(t, []string{"ahci", "dm_mod", "mptsas", "mptspi", "scsi_transport_spi", "vmw_pvscsi"}, a.Modules())
	assert.Equal(t, []string{"ext4", "nvme", "nvme_core", "virtio_blk"}, a.Builtin())
	assert.Equal(t, []string{kver}, a.KernelVersions())
	for _, m := range []string{"vmw_pvscsi", "vmw-pvscsi", "ahci", "mptsas", "mptspi", "nvme", "nvme-core", "nvme.ko", "dm-mod", "virtio_blk"} {
		assert.True(t, a.Has(m), m)
	}
	for _, m := range []string{"virtio_scsi", "megaraid_sas", "", "lib"} {
		assert.False(t, a.Has(m), m)
	}
	sh, ok := a.Lookup("bin/sh")
	require.True(t, ok)
	assert.Equal(t, fs.ModeSymlink, sh.Mode.Type())
	assert.Equal(t, "../usr/bin/busybox", sh.LinkTarget)
	empty, ok := a.Lookup("/var/empty")
	require.True(t, ok)
	assert.True(t, empty.Mode.IsDir())
	assert.Equal(t, fs.FileMode(0o755), empty.Mode.Perm())
	for _, e := range a.Entries {
		if size, ok := fx.size[e.Name]; ok {
			assert.Equal(t, size, e.Size, e.Name)
			assert.True(t, e.Mode.IsRegular(), e.Name)
		}
	}
}

// TestToolImages builds images the way initramfs generators do (early
// microcode cpio + compressed main cpio, both from the cpio tool) with
// each compressor, and checks the listing against cpio -t of the
// tool-decompressed archives.
func TestToolImages(t *testing.T) {
	fx := newFixture(t)
	main := cpioCreate(t, fx.dir, "newc")
	early := earlyCPIO(t)
	wantMain := cpioList(t, main)
	wantEarly := cpioList(t, early)

	t.Run("none", func(t *testing.T) {
		a, err := Read(bytes.NewReader(concat(early, main)), 0)
		require.NoError(t, err)
		checkFixture(t, fx, a, append(append([]string{}, wantEarly...), wantMain...))
		assert.Equal(t, []Segment{{"cpio", 0}, {"cpio", int64(len(early))}}, a.Segments)
	})
	for _, format := range []string{"gzip", "xz", "zstd", "lz4", "bzip2", "lzma"} {
		t.Run(format, func(t *testing.T) {
			comp := compress(t, format, main)
			// Oracle side: the tool's own decompression, listed by cpio.
			want := cpioList(t, decompress(t, format, comp))
			require.Equal(t, wantMain, want)

			a, err := Read(bytes.NewReader(comp), 0)
			require.NoError(t, err)
			checkFixture(t, fx, a, want)
			assert.Equal(t, []Segment{{format, 0}}, a.Segments)

			img := concat(early, comp)
			a, err = Read(bytes.NewReader(img), 0)
			require.NoError(t, err)
			checkFixture(t, fx, a, append(append([]string{}, wantEarly...), want...))
			assert.Equal(t, []Segment{{"cpio", 0}, {format, int64(len(early))}}, a.Segments)

			got, err := ReadFile(bytes.NewReader(img), 0, "/etc/modprobe.d/vmware.conf")
			require.NoError(t, err)
			assert.Equal(t, "options vmw_pvscsi cmd_per_lun=254\n", string(got))
			if format == "gzip" {
				got, err = ReadFile(bytes.NewReader(img), 0, "kernel/x86/microcode/GenuineIntel.bin")
				require.NoError(t, err)
				assert.Equal(t, pseudo(9000, 7), string(got))
				_, err = ReadFile(bytes.NewReader(img), 0, "etc/nothing")
				assert.ErrorIs(t, err, fs.ErrNotExist)
				_, err = ReadFile(bytes.NewReader(img), 0, "bin/sh")
				assert.ErrorIs(t, err, fs.ErrInvalid)
			}

			// A member followed by padding and another member of the
			// same format, as when images are appended to.
			extra := compress(t, format, newc("070701", file("etc/extra", "x")))
			a, err = Read(bytes.NewReader(concat(img, make([]byte, 4-len(img)%4+8), extra)), 0)
			require.NoError(t, err)
			assert.Equal(t, "etc/extra", a.Entries[len(a.Entries)-1].Name)
			assert.Len(t, a.Segments, 3)

			// The limit counts decompressed bytes.
			// (The exact boundary is checked once: NoError above used
			// the default limit.)
			_, err = Read(bytes.NewReader(img), int64(len(main))-1)
			assert.ErrorIs(t, err, ErrTooLarge)
			if format == "zstd" {
				_, err = Read(bytes.NewReader(img), int64(len(main)))
				assert.NoError(t, err)
			}
		})
	}
}

// TestToolMixedMembers concatenates members of every format (what a
// kernel with all decompressors unpacks) and checks later files override.
func TestToolMixedMembers(t *testing.T) {
	var img []byte
	var want []string
	for i, format := range []string{"lzma", "bzip2", "gzip", "xz", "lz4", "zstd", "bzip2"} {
		arc := newc("070701", file("etc/conf", format), file("etc/"+format, "1"))
		img = append(img, compress(t, format, arc)...)
		for len(img)%4 != 0 || i%2 == 0 && len(img)%16 != 0 {
			img = append(img, 0)
		}
		want = append(want, "etc/conf", "etc/"+format)
	}
	a, err := Read(bytes.NewReader(img), 0)
	require.NoError(t, err)
	assert.Equal(t, want, names(a))
	got, err := ReadFile(bytes.NewReader(img), 0, "etc/conf")
	require.NoError(t, err)
	assert.Equal(t, "bzip2", string(got))
}

// TestBzip2Padding: one zero byte after a bzip2 stream is padding, not a
// truncated concatenated stream.
func TestBzip2Padding(t *testing.T) {
	comp := compress(t, "bzip2", newc("070701", file("a", "1")))
	for _, pad := range []int{0, 1, 2, 3, 4} {
		a, err := Read(bytes.NewReader(concat(comp, make([]byte, pad))), 0)
		require.NoError(t, err, pad)
		assert.Equal(t, []string{"a"}, names(a))
	}
}

// TestToolLZ4MultiBlock: lz4 -l cuts at 8 MiB, so a bigger archive has
// several legacy blocks; another member may follow the short last block.
func TestToolLZ4MultiBlock(t *testing.T) {
	root := t.TempDir()
	big := pseudo(17<<20+12345, 9)
	writeFixture(t, root, map[string]string{"usr/lib/firmware/big.bin": big, "lib/modules/6.8.0/kernel/nvme.ko": "x"})
	arc := cpioCreate(t, root, "newc")
	comp := compress(t, "lz4", arc)
	want := cpioList(t, decompress(t, "lz4", comp))
	tail := gzipBytes(t, newc("070701", file("etc/after", "1")))
	a, err := Read(bytes.NewReader(concat(comp, tail)), 0)
	require.NoError(t, err)
	assert.Equal(t, append(want, "etc/after"), names(a))
	e, ok := a.Lookup("usr/lib/firmware/big.bin")
	require.True(t, ok)
	assert.Equal(t, int64(len(big)), e.Size)
	assert.True(t, a.Has("nvme"))
}

// TestToolCRCFormat reads a "crc" (070702) archive from the cpio tool and
// checks that a damaged data byte fails the checksum.
func TestToolCRCFormat(t *testing.T) {
	fx := newFixture(t)
	arc := cpioCreate(t, fx.dir, "crc")
	require.Equal(t, "070702", string(arc[:6]))
	a, err := Read(bytes.NewReader(arc), 0)
	require.NoError(t, err)
	checkFixture(t, fx, a, cpioList(t, arc))

	i := bytes.Index(arc, []byte("options vmw_pvscsi"))
	require.Positive(t, i)
	bad := bytes.Clone(arc)
	bad[i] ^= 1
	_, err = Read(bytes.NewReader(bad), 0)
	assert.ErrorIs(t, err, ErrCorrupt)
}

// TestToolUnsupportedCPIO: the odc and old binary formats that cpio can
// write are refused as unsupported (the kernel refuses them too).
func TestToolUnsupportedCPIO(t *testing.T) {
	root := t.TempDir()
	writeFixture(t, root, map[string]string{"etc/a": "a"})
	for _, format := range []string{"odc", "bin"} {
		arc := cpioCreate(t, root, format)
		_, err := Read(bytes.NewReader(arc), 0)
		assert.ErrorIs(t, err, ErrUnsupported, format)
		_, err = Read(bytes.NewReader(gzipBytes(t, arc)), 0)
		assert.ErrorIs(t, err, ErrUnsupported, format)
	}
	// lz4's default (non-legacy) frame format is not what the kernel reads.
	oracle.Require(t, "lz4")
	arc := newc("070701", file("etc/a", "a"))
	p := filepath.Join(t.TempDir(), "a")
	require.NoError(t, os.WriteFile(p, arc, 0o644))
	comp := runTool(t, "lz4", "-q", "-c", p)
	_, err := Read(bytes.NewReader(comp), 0)
	assert.True(t, errors.Is(err, ErrUnsupported), "%v", err)
}

// TestToolXZVariants: multi-block streams (xz -T, with sizes in block
// headers), every check type, and a BCJ filter chain (unsupported here).
func TestToolXZVariants(t *testing.T) {
	fx := newFixture(t)
	main := cpioCreate(t, fx.dir, "newc")
	want := cpioList(t, main)
	for _, opts := range [][]string{
		{"--check=crc32", "-T2", "--block-size=64KiB"},
		{"--check=crc64", "-1"},
		{"--check=sha256", "-1"},
		{"--check=none", "-1"},
	} {
		comp := compressWith(t, "xz", main, opts...)
		require.Equal(t, want, cpioList(t, decompress(t, "xz", comp)))
		a, err := Read(bytes.NewReader(comp), 0)
		require.NoError(t, err, opts)
		checkFixture(t, fx, a, want)
	}
	comp := compressWith(t, "xz", main, "--x86", "--lzma2=preset=1")
	_, err := Read(bytes.NewReader(comp), 0)
	assert.ErrorIs(t, err, ErrUnsupported)
}

// TestToolZstdFrames: an archive split across zstd frames, with a
// skippable frame in front, is one member; what follows is another.
func TestToolZstdFrames(t *testing.T) {
	arc := newc("070701", file("etc/a", pseudo(20000, 1)), file("etc/b", "b"))
	skip := []byte{0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'}
	img := concat(skip, compress(t, "zstd", arc[:5000]), compress(t, "zstd", arc[5000:]),
		[]byte{0, 0, 0}, compress(t, "zstd", newc("070701", file("etc/c", "c"))))
	a, err := Read(bytes.NewReader(img), 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"etc/a", "etc/b", "etc/c"}, names(a))
	assert.Equal(t, []string{"zstd", "zstd"}, []string{a.Segments[0].Format, a.Segments[1].Format})
}

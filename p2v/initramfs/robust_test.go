package initramfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz/lzma"
)

// typed reports whether err is one of the package's errors.
func typed(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrTooLarge)
}

// robustImages returns small images in every format available: the
// Go-built ones always, the tool-compressed ones when the tools exist.
func robustImages(t *testing.T) map[string][]byte {
	early := newc("070701", dir("kernel"), file("kernel/x86/microcode/AuthenticAMD.bin", "amd"))
	main := newc("070701",
		dir("lib"), dir("lib/modules"), dir("lib/modules/"+kver),
		file("lib/modules/"+kver+"/kernel/drivers/scsi/vmw_pvscsi.ko.xz", pseudo(600, 11)),
		file("lib/modules/"+kver+"/modules.builtin", "kernel/drivers/ata/ahci.ko\n"),
		symlink("bin/sh", "busybox"),
		file("etc/fstab", pseudo(300, 12)))
	imgs := map[string][]byte{
		"none": concat(early, main),
		"gzip": concat(early, gzipBytes(t, main)),
		"crc":  concat(early, newc("070702", file("etc/a", "abc"))),
	}
	for _, format := range []string{"xz", "zstd", "lz4", "bzip2", "lzma"} {
		if _, err := lookTool(compressors[format].tool); err == nil {
			imgs[format] = concat(early, compressWith(t, format, main, smallWindow[format]...))
		}
	}
	return imgs
}

// TestTruncation cuts every image at every offset: the result is a typed
// error, or (for a cut at a segment boundary or in padding) a prefix of
// the full listing made of whole archives.
func TestTruncation(t *testing.T) {
	for format, img := range robustImages(t) {
		full, err := Read(bytes.NewReader(img), 0)
		require.NoError(t, err, format)
		early := newc("070701", dir("kernel"), file("kernel/x86/microcode/AuthenticAMD.bin", "amd"))
		for cut := range len(img) {
			a, err := Read(bytes.NewReader(img[:cut]), 0)
			if err != nil {
				require.True(t, typed(err), "%s cut %d: %v", format, cut, err)
				continue
			}
			switch {
			case cut == len(early):
				assert.Equal(t, names(full)[:2], names(a), "%s cut %d", format, cut)
			default:
				t.Fatalf("%s: cut at %d of %d accepted: %v", format, cut, len(img), names(a))
			}
		}
	}
}

// TestFlips damages every byte of every image: errors must be typed and
// nothing may panic.
func TestFlips(t *testing.T) {
	for format, img := range robustImages(t) {
		bad := bytes.Clone(img)
		for i := range bad {
			x := []byte{0xff, 0x01, 0x80, 0x10}[i%4]
			bad[i] ^= x
			_, err := Read(bytes.NewReader(bad), 1<<20)
			if err != nil {
				require.True(t, typed(err), "%s flip %#x at %d: %v", format, x, i, err)
			}
			bad[i] ^= x
		}
	}
}

func TestGarbage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := [][]byte{nil, {0}, make([]byte, 4096), []byte("hello, world"), []byte("0707"), []byte("070701"),
		[]byte("\x1f\x8b"), []byte("\xfd7zXZ\x00"), []byte("\x28\xb5\x2f\xfd"), []byte("\x02\x21\x4c\x18"),
		[]byte("BZh9"), []byte("\x5d\x00\x00"), []byte("\x89LZO\x00")}
	for _, n := range []int{1, 3, 7, 100, 5000} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		cases = append(cases, b)
		for _, m := range [][]byte{[]byte("\x1f\x8b\x08\x00"), []byte("\xfd7zXZ\x00\x00\x01"), []byte("\x28\xb5\x2f\xfd"),
			[]byte("\x02\x21\x4c\x18"), []byte("BZh9"), []byte("\x5d\x00\x00\x10\x00"), []byte("070701")} {
			cases = append(cases, concat(m, b))
		}
	}
	for i, c := range cases {
		a, err := Read(bytes.NewReader(c), 1<<20)
		require.Error(t, err, "case %d: %v", i, a)
		require.True(t, typed(err), "case %d: %v", i, err)
	}
	_, err := Read(bytes.NewReader(nil), 0)
	assert.ErrorIs(t, err, ErrCorrupt)
	_, err = Read(bytes.NewReader([]byte("\x89LZO\x00\x0d\x0a\x1a\x0a")), 0)
	assert.ErrorIs(t, err, ErrUnsupported)
}

func TestSmallImage(t *testing.T) {
	img := smallImage(t)
	a, err := Read(bytes.NewReader(img), 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"6.1.0-18-amd64"}, a.KernelVersions())
	assert.Equal(t, []string{"ahci", "vmw_pvscsi"}, a.Modules())
	assert.Equal(t, []string{"nvme_core"}, a.Builtin())
	assert.True(t, a.Has("nvme-core"))
	assert.False(t, a.Has("nvme"))
	lib, ok := a.Lookup("lib")
	require.True(t, ok)
	assert.Equal(t, "usr/lib", lib.LinkTarget)
	assert.Equal(t, []Segment{{"cpio", 0}, {"gzip", 1024}}, a.Segments)
}

func TestAlignmentAndPadding(t *testing.T) {
	arc := newc("070701", file("a", "1"))
	_, err := Read(bytes.NewReader(concat([]byte{0}, arc)), 0)
	assert.ErrorIs(t, err, ErrCorrupt, "raw archive at an unaligned offset")
	a, err := Read(bytes.NewReader(concat(make([]byte, 8), arc, make([]byte, 3))), 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, names(a))
	// Inside a compressed member, padding must end 4-aligned.
	_, err = Read(bytes.NewReader(gzipBytes(t, concat(arc, []byte{0}, arc))), 0)
	assert.ErrorIs(t, err, ErrCorrupt)
	a, err = Read(bytes.NewReader(gzipBytes(t, concat(arc, make([]byte, 4), arc, make([]byte, 5)))), 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "a"}, names(a))
	// A member that ends inside an archive is corrupt (the kernel says
	// "junk at the end of compressed archive").
	_, err = Read(bytes.NewReader(concat(gzipBytes(t, arc[:60]), gzipBytes(t, arc[60:]))), 0)
	assert.ErrorIs(t, err, ErrCorrupt)
}

func TestHeaderChecks(t *testing.T) {
	arc := newc("070701", file("abc", "1"))
	for _, c := range []struct {
		off int
		val string
	}{
		{6 + 8*11, "00000000"}, // name size 0
		{6 + 8*11, "00001001"}, // name size > PATH_MAX
		{6 + 8*6, "0000000G"},  // bad hex
		{6 + 8*11, "00000003"}, // name without NUL
		{0, "070703"},
	} {
		bad := bytes.Clone(arc)
		copy(bad[c.off:], c.val)
		_, err := Read(bytes.NewReader(bad), 0)
		assert.ErrorIs(t, err, ErrCorrupt, c.val)
	}
	bad := bytes.Clone(arc)
	copy(bad, "070707")
	_, err := Read(bytes.NewReader(bad), 0)
	assert.ErrorIs(t, err, ErrUnsupported)
}

func TestLimit(t *testing.T) {
	zeros := newc("070701", file("big", string(make([]byte, 1<<20))))
	img := gzipBytes(t, zeros)
	_, err := Read(bytes.NewReader(img), 1<<19)
	assert.ErrorIs(t, err, ErrTooLarge)
	_, err = Read(bytes.NewReader(img), int64(len(zeros)))
	assert.NoError(t, err)
	// Decompressed zero padding counts too.
	_, err = Read(bytes.NewReader(gzipBytes(t, concat(newc("070701"), make([]byte, 1<<20)))), 1<<19)
	assert.ErrorIs(t, err, ErrTooLarge)
}

func TestReadFileLimits(t *testing.T) {
	img := gzipBytes(t, newc("070701",
		file("etc/big", string(make([]byte, MaxReadFile+1))),
		file("etc/ok", string(make([]byte, MaxReadFile))),
		file("./etc/dup", "old"), file("etc/dup", "new"),
		dir("etc/d")))
	_, err := ReadFile(bytes.NewReader(img), 0, "etc/big")
	assert.ErrorIs(t, err, ErrTooLarge)
	b, err := ReadFile(bytes.NewReader(img), 0, "etc/ok")
	require.NoError(t, err)
	assert.Len(t, b, MaxReadFile)
	b, err = ReadFile(bytes.NewReader(img), 0, "/etc/dup")
	require.NoError(t, err)
	assert.Equal(t, "new", string(b))
	_, err = ReadFile(bytes.NewReader(img), 0, "etc/d")
	assert.Error(t, err)
	_, err = ReadFile(bytes.NewReader(img), 0, "/")
	assert.Error(t, err)
}

type failingReader struct {
	r   io.Reader
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// TestReaderError: an error of the caller's reader is returned as is,
// also when it happens inside a compressed member.
func TestReaderError(t *testing.T) {
	boom := errors.New("disk on fire")
	for format, img := range robustImages(t) {
		for _, at := range []int{0, 10, 200, len(img) - 1} {
			_, err := Read(&failingReader{r: bytes.NewReader(img), n: at, err: boom}, 0)
			assert.ErrorIs(t, err, boom, "%s at %d", format, at)
		}
	}
}

// TestDecoderWindows: headers asking for huge history buffers are refused
// before anything is allocated.
func TestDecoderWindows(t *testing.T) {
	// zstd: a hand-made frame with a 2 GiB window and one raw block.
	data := newc("070701", file("a", "1"))
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8}
	h := uint32(1 | len(data)<<3)
	frame = append(frame, byte(h), byte(h>>8), byte(h>>16))
	frame = append(frame, data...)
	_, err := Read(bytes.NewReader(frame), 0)
	assert.ErrorIs(t, err, ErrTooLarge)
	frame[5] = 0x50 // 1 MiB window: fine
	a, err := Read(bytes.NewReader(frame), 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, names(a))

	// lzma: the dictionary size is in the header.
	lz := []byte{0x5d, 0, 0, 0, 0x40, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0}
	_, err = Read(bytes.NewReader(lz), 0)
	assert.ErrorIs(t, err, ErrTooLarge)

	// xz: rewrite the LZMA2 dictionary code of a real stream.
	if _, err := lookTool("xz"); err == nil {
		x := compress(t, "xz", data)
		hs := 12 // block header after the stream header
		size := (int(x[hs]) + 1) * 4
		hdr := x[hs : hs+size]
		i := bytes.Index(hdr, []byte{0x21, 0x01})
		require.Positive(t, i)
		for code, want := range map[byte]error{40: ErrTooLarge, 36: ErrTooLarge, 41: ErrCorrupt, 20: nil} {
			y := bytes.Clone(x)
			hdr := y[hs : hs+size]
			hdr[i+2] = code
			binary.LittleEndian.PutUint32(hdr[size-4:], crc32.ChecksumIEEE(hdr[:size-4]))
			_, err := Read(bytes.NewReader(y), 0)
			if want == nil {
				assert.NoError(t, err, code)
			} else {
				assert.ErrorIs(t, err, want, code)
			}
		}
	}
}

func TestModuleNames(t *testing.T) {
	for in, want := range map[string]string{
		"vmw_pvscsi.ko.xz": "vmw_pvscsi", "nvme-core.ko.zst": "nvme_core", "dm-mod.ko.gz": "dm_mod",
		"ahci": "ahci", "kernel/drivers/ata/ahci.ko": "ahci", "x.ko.bz2": "x.ko.bz2", "": "",
	} {
		assert.Equal(t, want, moduleName(in), in)
	}
	got := parseBuiltin("modules.builtin.modinfo", []byte("a-b.x=1\x00\x00bad\x00c.parm=y:int\x00.=\x00"))
	slices.Sort(got)
	assert.Equal(t, []string{"a_b", "c"}, got)
}

// TestLZMAKnownSize: an lzma-alone stream with its size in the header and
// no end marker stops exactly at its end, so another member can follow.
func TestLZMAKnownSize(t *testing.T) {
	arc := newc("070701", file("etc/a", pseudo(5000, 3)))
	for _, eos := range []bool{false, true} {
		var b bytes.Buffer
		w, err := lzma.WriterConfig{Size: int64(len(arc)), EOSMarker: eos, DictCap: 1 << 16}.NewWriter(&b)
		require.NoError(t, err)
		_, err = w.Write(arc)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		require.Equal(t, byte(0x5d), b.Bytes()[0])
		img := concat(b.Bytes(), gzipBytes(t, newc("070701", file("etc/b", "b"))))
		a, err := Read(bytes.NewReader(img), 0)
		require.NoError(t, err, "eos %v", eos)
		assert.Equal(t, []string{"etc/a", "etc/b"}, names(a))
	}
}

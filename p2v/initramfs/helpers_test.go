package initramfs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/stretchr/testify/require"
)

// tentry is an archive member for newc, the in-Go archive writer used
// where no tool is needed (unit cases, fuzz seeds, the example).
type tentry struct {
	name string
	mode uint32 // full st_mode; 0 means a regular 0644 file
	data string
}

func file(name, data string) tentry { return tentry{name: name, mode: 0o100644, data: data} }
func dir(name string) tentry        { return tentry{name: name, mode: 0o040755} }
func symlink(name, target string) tentry {
	return tentry{name: name, mode: 0o120777, data: target}
}

// newc writes one archive in newc ("070701") or crc ("070702") format,
// with its trailer, padded to a multiple of 4.
func newc(magic string, entries ...tentry) []byte {
	var b bytes.Buffer
	write := func(ino int, e tentry) {
		mode := e.mode
		if mode == 0 {
			mode = 0o100644
		}
		var sum uint32
		if magic == "070702" && mode&0o170000 == 0o100000 {
			for i := 0; i < len(e.data); i++ {
				sum += uint32(e.data[i])
			}
		}
		fmt.Fprintf(&b, "%s%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			magic, ino, mode, 0, 0, 1, 0, len(e.data), 0, 0, 0, 0, len(e.name)+1, sum)
		b.WriteString(e.name)
		b.WriteByte(0)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
		b.WriteString(e.data)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	for i, e := range entries {
		write(i+1, e)
	}
	write(0, tentry{name: "TRAILER!!!", mode: 0})
	return b.Bytes()
}

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := zw.Write(data)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return b.Bytes()
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// smallImage is a dracut-like image built in Go: an uncompressed early
// microcode archive, then a gzip member with the modules.
func smallImage(t testing.TB) []byte {
	early := newc("070701",
		dir("kernel"), dir("kernel/x86"), dir("kernel/x86/microcode"),
		file("kernel/x86/microcode/GenuineIntel.bin", "microcode"))
	main := newc("070701",
		dir("usr"), dir("usr/lib"), dir("usr/lib/modules"), dir("usr/lib/modules/6.1.0-18-amd64"),
		file("usr/lib/modules/6.1.0-18-amd64/kernel/drivers/scsi/vmw_pvscsi.ko.xz", "xz"),
		file("usr/lib/modules/6.1.0-18-amd64/kernel/drivers/ata/ahci.ko", "ko"),
		file("usr/lib/modules/6.1.0-18-amd64/modules.builtin", "kernel/drivers/nvme/host/nvme-core.ko\n"),
		symlink("lib", "usr/lib"),
		file("etc/modprobe.d/pvscsi.conf", "options vmw_pvscsi cmd_per_lun=254\n"))
	return concat(early, make([]byte, (512-len(early)%512)%512), gzipBytes(t, main))
}

// fixture is a directory tree like a small initramfs, shared by the
// tool-based tests.
type fixture struct {
	dir  string
	size map[string]int64 // regular file name → size
}

func writeFixture(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
}

// pseudo returns n bytes of compressible but not trivial data.
func pseudo(n int, seed uint32) string {
	var b strings.Builder
	b.Grow(n)
	x := seed | 1
	words := []string{"module ", "scsi ", "vmw_pvscsi ", "ahci ", "\n", "nvme ", "0x", "init ", "\x00\x01", "mptsas "}
	for b.Len() < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		w := words[x%uint32(len(words))]
		if x&0x100 != 0 {
			w = string(rune('a' + x%26))
		}
		b.WriteString(w)
	}
	return b.String()[:n]
}

const kver = "5.14.0-70"

func newFixture(t testing.TB) *fixture {
	t.Helper()
	root := t.TempDir()
	mod := "lib/modules/" + kver + "/"
	files := map[string]string{
		mod + "kernel/drivers/scsi/vmw_pvscsi.ko.xz":      pseudo(3000, 1),
		mod + "kernel/drivers/ata/ahci.ko.zst":            pseudo(2000, 2),
		mod + "kernel/drivers/message/fusion/mptsas.ko":   pseudo(70000, 3),
		mod + "kernel/drivers/message/fusion/mptspi.ko":   pseudo(5000, 4),
		mod + "kernel/drivers/md/dm-mod.ko.gz":            pseudo(100, 5),
		mod + "kernel/drivers/scsi/scsi_transport_spi.ko": "",
		mod + "modules.builtin":                           "kernel/drivers/nvme/host/nvme.ko\nkernel/drivers/nvme/host/nvme-core.ko\nkernel/fs/ext4/ext4.ko\n",
		mod + "modules.builtin.modinfo":                   "ext4.license=GPL\x00virtio_blk.description=Virtio block driver\x00virtio_blk.license=GPL\x00",
		mod + "modules.dep":                               "kernel/drivers/scsi/vmw_pvscsi.ko.xz:\n",
		"etc/modprobe.d/vmware.conf":                      "options vmw_pvscsi cmd_per_lun=254\n",
		"etc/fstab":                                       "/dev/sda1 / xfs defaults 0 0\n",
		"usr/bin/busybox":                                 pseudo(300000, 6),
		"usr/lib/dracut/modules.txt":                      "base\nkernel-modules\n",
	}
	writeFixture(t, root, files)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var", "empty"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	require.NoError(t, os.Symlink("../usr/bin/busybox", filepath.Join(root, "bin", "sh")))
	require.NoError(t, os.Link(filepath.Join(root, "usr/bin/busybox"), filepath.Join(root, "usr/bin/ash")))
	size := map[string]int64{}
	for name, data := range files {
		size[name] = int64(len(data))
	}
	return &fixture{dir: root, size: size}
}

// cpioCreate archives dir with the cpio tool, like dracut does
// (find . | cpio -o -H format), and returns the archive bytes.
func cpioCreate(t testing.TB, dir, format string) []byte {
	t.Helper()
	oracle.Require(t, "cpio")
	return oracle.Run(t, "sh", "-c", fmt.Sprintf("cd '%s' && find . | LC_ALL=C sort | cpio -o -H %s --quiet", dir, format))
}

// cpioList is the oracle listing: cpio -t of an uncompressed archive.
func cpioList(t testing.TB, archive []byte) []string {
	t.Helper()
	oracle.Require(t, "cpio")
	p := filepath.Join(t.TempDir(), "a.cpio")
	require.NoError(t, os.WriteFile(p, archive, 0o644))
	out := oracle.Run(t, "cpio", "-t", "--quiet", "-F", p)
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// compressors gives, per format, the command compressing a file to
// stdout and the one decompressing it (the oracle side).
var compressors = map[string]struct {
	tool      string
	comp, dec []string
}{
	"gzip":  {"gzip", []string{"-9", "-n", "-c"}, []string{"-d", "-c"}},
	"xz":    {"xz", []string{"--check=crc32", "-c"}, []string{"-d", "-c"}},
	"zstd":  {"zstd", []string{"-q", "-c"}, []string{"-q", "-d", "-c"}},
	"lz4":   {"lz4", []string{"-l", "-q", "-c"}, []string{"-d", "-q", "-c"}},
	"bzip2": {"bzip2", []string{"-c"}, []string{"-d", "-c"}},
	"lzma":  {"lzma", []string{"-c"}, []string{"-d", "-c"}},
}

// compress runs the format's tool on data.
func compress(t testing.TB, format string, data []byte) []byte {
	t.Helper()
	return compressWith(t, format, data)
}

// smallWindow are compressor options for small history buffers, so that
// the many Reads of robustness tests and fuzzing stay cheap.
var smallWindow = map[string][]string{
	"xz":    {"--lzma2=preset=6,dict=64KiB"},
	"lzma":  {"--lzma1=preset=6,dict=64KiB"},
	"bzip2": {"-1"},
}

// compressWith runs the format's tool on data with extra options.
func compressWith(t testing.TB, format string, data []byte, opts ...string) []byte {
	t.Helper()
	c := compressors[format]
	oracle.Require(t, c.tool)
	p := filepath.Join(t.TempDir(), "in")
	require.NoError(t, os.WriteFile(p, data, 0o644))
	args := append(append(append([]string{}, c.comp...), opts...), p)
	return oracle.Run(t, c.tool, args...)
}

// decompress runs the format's tool to undo compress.
func decompress(t testing.TB, format string, data []byte) []byte {
	t.Helper()
	c := compressors[format]
	oracle.Require(t, c.tool)
	p := filepath.Join(t.TempDir(), "in")
	require.NoError(t, os.WriteFile(p, data, 0o644))
	return oracle.Run(t, c.tool, append(c.dec, p)...)
}

func names(a *Archive) []string {
	out := make([]string, len(a.Entries))
	for i, e := range a.Entries {
		out[i] = e.Name
	}
	return out
}

func runTool(t testing.TB, tool string, args ...string) []byte {
	t.Helper()
	oracle.Require(t, tool)
	return oracle.Run(t, tool, args...)
}

func lookTool(tool string) (string, error) { return exec.LookPath(tool) }

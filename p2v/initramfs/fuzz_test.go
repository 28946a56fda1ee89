package initramfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzRead reads arbitrary bytes as an image: errors must be typed,
// nothing may panic, and ReadFile must agree with Read. The decompressor
// window is lowered to 1 MiB so that headers asking for big dictionaries
// fail fast instead of allocating. Seeds are in testdata/fuzz/FuzzRead
// (TestWriteSeeds regenerates them):
//
//	go test -run '^$' -fuzz FuzzRead ./p2v/initramfs
func FuzzRead(f *testing.F) {
	saved := maxWindow
	maxWindow = 1 << 20
	f.Cleanup(func() { maxWindow = saved })
	f.Add(smallImage(f))
	f.Add(newc("070702", file("etc/a", "abc"), symlink("l", "etc/a")))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		const limit = 4 << 20
		a, err := Read(bytes.NewReader(b), limit)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if len(a.Segments) == 0 {
			t.Fatal("no segment in an accepted image")
		}
		for _, m := range a.Modules() {
			if !a.Has(m) {
				t.Fatalf("Has(%q) false for a listed module", m)
			}
		}
		for _, m := range a.Builtin() {
			if !a.Has(m) {
				t.Fatalf("Has(%q) false for a builtin module", m)
			}
		}
		_ = a.KernelVersions()
		for i := len(a.Entries) - 1; i >= 0; i-- {
			e := a.Entries[i]
			if !e.Mode.IsRegular() || cleanName(e.Name) == "." {
				continue
			}
			last, _ := a.Lookup(e.Name)
			data, err := ReadFile(bytes.NewReader(b), limit, e.Name)
			switch {
			case !last.Mode.IsRegular():
				if err == nil {
					t.Fatalf("ReadFile(%q) of a %v succeeded", e.Name, last.Mode)
				}
			case last.Size > MaxReadFile:
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("ReadFile(%q) of %d bytes: %v", e.Name, last.Size, err)
				}
			case err != nil || int64(len(data)) != last.Size:
				t.Fatalf("ReadFile(%q): %d bytes, %v; entry says %d", e.Name, len(data), err, last.Size)
			}
			break
		}
	})
}

// TestWriteSeeds regenerates testdata/small.img (used by the example) and
// the FuzzRead seed corpus when STANDBYKIT_WRITE_SEEDS=1; the compressed
// seeds need the compression tools.
func TestWriteSeeds(t *testing.T) {
	if os.Getenv("STANDBYKIT_WRITE_SEEDS") != "1" {
		t.Skip("set STANDBYKIT_WRITE_SEEDS=1 to regenerate testdata")
	}
	require.NoError(t, os.WriteFile(filepath.Join("testdata", "small.img"), smallImage(t), 0o644))
	corpus := filepath.Join("testdata", "fuzz", "FuzzRead")
	require.NoError(t, os.MkdirAll(corpus, 0o755))
	early := newc("070701", file("kernel/x86/microcode/GenuineIntel.bin", "ucode"))
	main := newc("070701",
		dir("lib"), dir("lib/modules/6.8.0"),
		file("lib/modules/6.8.0/kernel/drivers/scsi/vmw_pvscsi.ko.zst", "pv"),
		file("lib/modules/6.8.0/kernel/drivers/message/fusion/mptspi.ko", "spi"),
		file("lib/modules/6.8.0/modules.builtin", "kernel/drivers/nvme/host/nvme.ko\n"),
		file("lib/modules/6.8.0/modules.builtin.modinfo", "ahci.license=GPL\x00"),
		symlink("bin/sh", "busybox"),
		file("etc/modprobe.d/a.conf", "options ahci x=1\n"))
	seeds := map[string][]byte{
		"small":   smallImage(t),
		"newc":    concat(early, main),
		"crc":     newc("070702", file("etc/a", "abc"), symlink("l", "etc/a")),
		"padding": concat(make([]byte, 8), early, make([]byte, 4), gzipBytes(t, concat(main, make([]byte, 4), early))),
	}
	for _, format := range []string{"xz", "zstd", "lz4", "bzip2", "lzma"} {
		seeds[format] = concat(early, compressWith(t, format, main, smallWindow[format]...))
	}
	for name, b := range seeds {
		data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		require.LessOrEqual(t, len(data), 16<<10, name)
		_, err := Read(bytes.NewReader(b), 0)
		require.NoError(t, err, name)
		require.NoError(t, os.WriteFile(filepath.Join(corpus, name), []byte(data), 0o644))
	}
}

package xfs

import (
	"strings"

	"bytes"
	"fmt"
	"github.com/standbykit/standbykit/internal/oracle"
	"os"
	"path/filepath"
	"testing"
)

var fuzzPaths = []string{"/os-release", "/fstab", "/grub.cfg", "/short", "/long", "/", "/etc/fstab"}

func FuzzOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		fsys.UUID()
		for _, p := range fuzzPaths {
			fsys.Lookup(p)
			fsys.ReadFile(p)
			fsys.ReadDir(p)
			fsys.Readlink(p)
			fsys.FileRanges(p)
		}
	})
}

// TestWriteSeeds writes the FuzzOpen seed corpus: small filesystems whose
// files all live in the root directory, so that their inodes and blocks
// lie in the first blocks of allocation group 0, cut after the root inode
// chunk. Run with STANDBYKIT_WRITE_SEEDS=1.
func TestWriteSeeds(t *testing.T) {
	if os.Getenv("STANDBYKIT_WRITE_SEEDS") != "1" {
		t.Skip("set STANDBYKIT_WRITE_SEEDS=1 to rewrite testdata/fuzz/FuzzOpen")
	}
	oracle.Require(t, "mkfs.xfs")
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	src := func(name, data string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var b strings.Builder
	b.WriteString("/dev/null\n0 0\nd--755 0 0\n")
	fmt.Fprintf(&b, "os-release ---644 0 0 %s\n", src("os", osRel))
	fmt.Fprintf(&b, "fstab ---644 0 0 %s\n", src("fstab", fstab))
	fmt.Fprintf(&b, "grub.cfg ---644 0 0 %s\n", src("grub", strings.Repeat(grubCfg, 50)))
	b.WriteString("short l--777 0 0 os-release\n")
	fmt.Fprintf(&b, "long l--777 0 0 /%sos-release\n", strings.Repeat("long-component/", 30))
	empty := src("empty", "")
	for i := 0; i < 40; i++ { // enough for a block-format root directory
		fmt.Fprintf(&b, "file-%02d ---644 0 0 %s\n", i, empty)
	}
	b.WriteString("$\n")
	proto := src("proto", b.String())
	for _, v := range []struct {
		name string
		args []string
	}{
		{"v5", nil},
		{"v5-1k", []string{"-b", "size=1024"}},
		{"v4", []string{"-m", "crc=0", "-n", "ftype=0"}},
	} {
		img := filepath.Join(tmp, v.name+".img")
		if err := os.WriteFile(img, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, 320<<20); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"-q", "-f", "-p", proto}, v.args...)
		args = append(args, "-d", "name="+img+",size=320m")
		if out, err := oracle.Output("mkfs.xfs", args...); err != nil {
			t.Logf("%s: mkfs.xfs: %v\n%s", v.name, err, out)
			continue
		}
		if v.name != "v4" {
			if err := fixRemoteSymlink(img, "/long"); err != nil {
				t.Fatal(err)
			}
		}
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fsys, err := Open(f, 320<<20)
		if err != nil {
			t.Fatal(err)
		}
		off, _ := fsys.inodeOffset(fsys.rootIno)
		n := off + 64*int64(fsys.inodeSize) // the end of the root inode chunk
		for _, p := range []string{"/", "/os-release", "/fstab", "/grub.cfg", "/long"} {
			in, err := fsys.resolve(p, false)
			if err != nil {
				t.Fatal(err)
			}
			if in.Format == fmtLocal {
				continue
			}
			ext, err := fsys.extents(in)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ext {
				o, _ := fsys.fsbOffset(e.fsb, e.count)
				n = max(n, o+int64(e.count)*fsys.blockSize)
			}
		}
		if n > 256<<10 {
			t.Fatalf("%s: root inode chunk ends at %d", v.name, n)
		}
		data := make([]byte, n)
		if _, err := f.ReadAt(data, 0); err != nil {
			t.Fatal(err)
		}
		// Trailing zeros cost four bytes each in the corpus file: drop
		// them, but keep whole blocks, which extents must lie within.
		trimmed := int64(len(bytes.TrimRight(data, "\x00")))
		data = data[:min(n, (trimmed+fsys.blockSize-1)/fsys.blockSize*fsys.blockSize)]
		// Every file must be readable from the seed alone.
		small, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/os-release", "/fstab", "/grub.cfg", "/short"} {
			if _, err := small.ReadFile(p); err != nil {
				t.Errorf("%s seed: %v", v.name, err)
			}
		}
		if ents, err := small.ReadDir("/"); err != nil || len(ents) != 45 {
			t.Errorf("%s seed: ReadDir(/) = %d entries, %v", v.name, len(ents), err)
		}
		if _, err := small.Readlink("/long"); err != nil {
			t.Errorf("%s seed: %v", v.name, err)
		}
		seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, v.name), []byte(seed), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

package xfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/internal/fuzzimage"
	"github.com/standbykit/standbykit/internal/oracle"
)

var fuzzPaths = []string{"/os-release", "/fstab", "/grub.cfg", "/short", "/long", "/", "/etc/fstab"}

// fuzzMaxImage caps the size of the images FuzzOpen reads.
const fuzzMaxImage = 64 << 20

// exercise runs the read paths of the package over an image; it must
// never panic, and what it returns must be consistent.
func exercise(t *testing.T, img *fuzzimage.Image) {
	fsys, err := Open(img, img.Size())
	if err != nil {
		return
	}
	fsys.UUID()
	for _, p := range fuzzPaths {
		in, err := fsys.LookupFollow(p)
		fsys.Lookup(p)
		fsys.ReadDir(p)
		fsys.Readlink(p)
		rs, rerr := fsys.FileRanges(p)
		// Reading a file allocates its size: skip what mutations make huge.
		if err != nil || in.Size > 1<<20 {
			continue
		}
		data, err := fsys.ReadFile(p)
		if err != nil || rerr != nil {
			continue
		}
		var n int64
		for _, r := range rs {
			if r.Length <= 0 || !r.Zero && (r.Offset < 0 || r.Offset > img.Size()-r.Length) {
				t.Fatalf("%s: range %+v outside the image", p, r)
			}
			n += r.Length
		}
		if n != int64(len(data)) {
			t.Fatalf("%s: ranges cover %d bytes, ReadFile returned %d", p, n, len(data))
		}
	}
}

// FuzzOpen reads mutated small filesystems given as sparse images
// (internal/fuzzimage): opening, looking up, listing, reading and mapping
// must return errors, never panic or run away.
func FuzzOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		exercise(t, fuzzimage.Decode(data, fuzzMaxImage))
	})
}

// TestFuzzSeeds checks that the committed seeds are the filesystems they
// should be, so that fuzzing starts from valid images.
func TestFuzzSeeds(t *testing.T) {
	for _, name := range []string{"v4", "v5", "v5-1k"} {
		data, err := fuzzimage.ReadCorpusFile(filepath.Join("testdata", "fuzz", "FuzzOpen", name))
		if err != nil {
			t.Fatal(err)
		}
		img := fuzzimage.Decode(data, fuzzMaxImage)
		fsys, err := Open(img, img.Size())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range []string{"/os-release", "/fstab", "/grub.cfg", "/short"} {
			if _, err := fsys.ReadFile(p); err != nil {
				t.Errorf("%s seed: %v", name, err)
			}
		}
		if ents, err := fsys.ReadDir("/"); err != nil || len(ents) != 45 {
			t.Errorf("%s seed: ReadDir(/) = %d entries, %v", name, len(ents), err)
		}
		if _, err := fsys.Readlink("/long"); err != nil {
			t.Errorf("%s seed: %v", name, err)
		}
		exercise(t, img)
	}
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
		// Keep whole blocks, which extents must lie within.
		data = data[:(n+fsys.blockSize-1)/fsys.blockSize*fsys.blockSize]
		seedImg := fuzzimage.Decode(fuzzimage.Sparse(data), fuzzMaxImage)
		// Every file must be readable from the seed alone.
		small, err := Open(seedImg, seedImg.Size())
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
		if err := fuzzimage.WriteCorpusFile(filepath.Join(dir, v.name), fuzzimage.Sparse(data)); err != nil {
			t.Fatal(err)
		}
	}
}

package ext4

import (
	"bytes"
	"compress/gzip"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/internal/fuzzimage"
	"github.com/standbykit/standbykit/internal/oracle"
)

// tinySize is the size of the seed images.
const tinySize = 256 << 10

// tinyKinds are the small filesystems the fuzz seeds hold.
var tinyKinds = []struct {
	name, mkfs string
	features   string
}{
	{"ext4-csum", "mkfs.ext4", "^has_journal,^resize_inode,metadata_csum,64bit"},
	{"ext4-nocsum", "mkfs.ext4", "^has_journal,^resize_inode,^metadata_csum,uninit_bg,^64bit"},
	{"ext4-inline", "mkfs.ext4", "^has_journal,^resize_inode,metadata_csum,inline_data"},
	{"ext2", "mkfs.ext2", "^resize_inode"},
}

const tinyFstab = "/dev/sda1 / ext4 defaults 0 1\n/dev/sda2 none swap sw 0 0\n"

// tinyImage builds a 256 KiB filesystem of 1 KiB blocks and 32 inodes.
func tinyImage(tb testing.TB, mkfs, features string) []byte {
	tb.Helper()
	oracle.Require(tb, mkfs)
	dir := tb.TempDir()
	root := filepath.Join(dir, "root")
	for name, data := range map[string]string{
		"etc/fstab":    tinyFstab,
		"etc/hostname": "tiny\n",
		"etc/multi":    strings.Repeat("multi-block text\n", 200),
		"d/x":          "x\n",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	for name, target := range map[string]string{"abs": "/etc/fstab", "d/rel": "../etc/hostname"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			tb.Fatal(err)
		}
	}
	img := filepath.Join(dir, "img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Truncate(img, tinySize); err != nil {
		tb.Fatal(err)
	}
	oracle.Run(tb, mkfs, "-q", "-F", "-d", root, "-b", "1024", "-N", "32", "-I", "256", "-O", features,
		"-E", "root_owner=0:0", "-U", "2a1d5b6e-4c8f-4a3e-9b7d-1f0e2d3c4b5a", "-L", "tiny", img)
	data, err := os.ReadFile(img)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// TestWriteSeedCorpus regenerates testdata/fuzz/FuzzOpen and the
// example's testdata/tiny.ext4.gz when STANDBYKIT_WRITE_SEEDS=1;
// otherwise it does nothing.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("STANDBYKIT_WRITE_SEEDS") != "1" {
		t.Skip("set STANDBYKIT_WRITE_SEEDS=1 to regenerate testdata")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, k := range tinyKinds {
		img := tinyImage(t, k.mkfs, k.features)
		if k.name == "ext4-csum" {
			var gz bytes.Buffer
			w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
			w.Write(img)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join("testdata", "tiny.ext4.gz"), gz.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		seed := fuzzimage.Sparse(img)
		if n := len(fuzzimage.FormatCorpusFile(seed)); n > 100<<10 {
			t.Fatalf("seed %s is %d bytes", k.name, n)
		}
		if err := fuzzimage.WriteCorpusFile(filepath.Join(dir, k.name), seed); err != nil {
			t.Fatal(err)
		}
	}
}

// fuzzMaxImage caps the size of the images FuzzOpen reads.
const fuzzMaxImage = 1 << 20

// seedImages returns the committed seed images.
func seedImages(tb testing.TB) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	for _, k := range tinyKinds {
		data, err := fuzzimage.ReadCorpusFile(filepath.Join("testdata", "fuzz", "FuzzOpen", k.name))
		if err != nil {
			tb.Fatal(err)
		}
		out[k.name] = fuzzimage.Decode(data, fuzzMaxImage).Bytes()
	}
	return out
}

// exercise opens img and reads, maps and plans rewrites of what it can;
// it must not panic, and what it returns must be consistent.
func exercise(t *testing.T, img []byte) {
	fsys, err := Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		return
	}
	for _, p := range []string{"/etc/fstab", "/abs", "/d/rel", "/etc/multi", "/d/x"} {
		// Reading a file allocates its size: skip what mutations make huge.
		if in, err := fsys.LookupFollow(p); err != nil || in.Size > 1<<20 {
			continue
		}
		data, err := fsys.ReadFile(p)
		ranges, rerr := fsys.FileRanges(p)
		if err == nil && rerr == nil {
			var got []byte
			for _, r := range ranges {
				if r.Length < 0 || !r.Zero && (r.Offset < 0 || r.Offset+r.Length > int64(len(img))) {
					t.Fatalf("%s: range %+v outside the image", p, r)
				}
				if r.Zero {
					got = append(got, make([]byte, r.Length)...)
				} else {
					got = append(got, img[r.Offset:r.Offset+r.Length]...)
				}
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%s: ranges and ReadFile disagree", p)
			}
		}
		patches, err := fsys.RewriteFile(p, []byte("rewritten\n"))
		if err == nil {
			for i, pt := range patches {
				if pt.Offset < 0 || pt.End() > int64(len(img)) || i > 0 && pt.Offset < patches[i-1].End() {
					t.Fatalf("%s: bad patch [%d,%d)", p, pt.Offset, pt.End())
				}
			}
		}
	}
	fsys.Readlink("/abs")
	fsys.Lookup("/d/../etc/./hostname")
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		entries, err := fsys.ReadDir(dir)
		if err != nil || depth > 3 {
			return
		}
		for i, e := range entries {
			if i > 50 {
				return
			}
			p := strings.TrimSuffix(dir, "/") + "/" + e.Name
			if e.Type == TypeDir {
				walk(p, depth+1)
			} else if in, err := fsys.Lookup(p); err == nil && in.Size <= 1<<20 {
				fsys.ReadFile(p)
			}
		}
	}
	walk("/", 0)
}

// FuzzOpen feeds mutated small filesystems, given as sparse images
// (internal/fuzzimage): opening, looking up, reading, mapping and
// planning rewrites must return errors, never panic or run away.
func FuzzOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		exercise(t, fuzzimage.Decode(data, fuzzMaxImage).Bytes())
	})
}

// TestSeedsRead checks that the committed seeds are the filesystems they
// should be, so that fuzzing starts from valid images.
func TestSeedsRead(t *testing.T) {
	seeds := seedImages(t)
	if len(seeds) != len(tinyKinds) {
		t.Fatalf("%d seeds, want %d", len(seeds), len(tinyKinds))
	}
	for name, img := range seeds {
		fsys, err := Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		data, err := fsys.ReadFile("/abs")
		if err != nil || string(data) != tinyFstab {
			t.Fatalf("%s: /abs: %q, %v", name, data, err)
		}
		if _, err := fsys.RewriteFile("/etc/fstab", []byte("x\n")); err != nil && name != "ext4-inline" {
			t.Fatalf("%s: rewrite: %v", name, err)
		}
	}
}

// TestMutations flips random bytes in the metadata of the seed images:
// a cheap, deterministic stand-in for fuzzing in every test run.
func TestMutations(t *testing.T) {
	seeds := seedImages(t)
	n := 300
	if testing.Short() {
		n = 50
	}
	for name, orig := range seeds {
		rng := rand.New(rand.NewPCG(7, uint64(len(name))))
		img := make([]byte, len(orig))
		for range n {
			copy(img, orig)
			for range 1 + rng.IntN(8) {
				// Metadata lives in the first 48 KiB of these images.
				img[rng.IntN(48<<10)] ^= byte(1 + rng.IntN(255))
			}
			exercise(t, img)
		}
	}
}

package ext4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/internal/heapprobe"
	"github.com/standbykit/standbykit/internal/oracle"
)

// TestClaimsBounded feeds filesystems whose superblock and inodes claim
// enormous sizes and counts: each read is refused, or bounded by what the
// image holds, without allocating what is claimed.
func TestClaimsBounded(t *testing.T) {
	seeds := seedImages(t)
	le := binary.LittleEndian
	type edit struct {
		seed string
		fn   func(b []byte, fsys *FS)
	}
	inodeOf := func(b []byte, fsys *FS, path string) []byte {
		in, err := fsys.Lookup(path)
		if err != nil {
			t.Fatal(err)
		}
		return b[in.off : in.off+int64(fsys.inodeSize)]
	}
	cases := map[string]edit{
		"blocks count": {"ext2", func(b []byte, _ *FS) { le.PutUint32(b[1024+0x4:], 0xffffffff) }},
		"inodes count": {"ext2", func(b []byte, _ *FS) { le.PutUint32(b[1024+0x0:], 0xffffffff) }},
		"per group": {"ext2", func(b []byte, _ *FS) {
			le.PutUint32(b[1024+0x20:], 0xffffffff)
			le.PutUint32(b[1024+0x28:], 0xffffffff)
		}},
		"file size": {"ext2", func(b []byte, fsys *FS) {
			in := inodeOf(b, fsys, "/etc/multi")
			le.PutUint32(in[0x4:], 0xffffffff)
			le.PutUint32(in[0x6C:], 0xffffffff)
		}},
		"directory size": {"ext2", func(b []byte, fsys *FS) {
			in := inodeOf(b, fsys, "/")
			le.PutUint32(in[0x4:], 0xffffffff)
			le.PutUint32(in[0x6C:], 0xffff)
		}},
		"indirect blocks": {"ext2", func(b []byte, fsys *FS) {
			in := inodeOf(b, fsys, "/etc/multi")
			le.PutUint32(in[0x6C:], 0xffff)
			for i := 12; i < 15; i++ { // single, double, triple indirect: block 1 (the superblock's)
				le.PutUint32(in[0x28+4*i:], 2)
			}
		}},
		"extent counts": {"ext4-nocsum", func(b []byte, fsys *FS) {
			in := inodeOf(b, fsys, "/etc/multi")
			le.PutUint16(in[0x28+2:], 0xffff) // entries
			le.PutUint16(in[0x28+4:], 0xffff) // max entries
		}},
		"extent length": {"ext4-nocsum", func(b []byte, fsys *FS) {
			in := inodeOf(b, fsys, "/etc/multi")
			le.PutUint16(in[0x28+12+4:], 0x7fff) // first extent's length
		}},
	}
	for name, c := range cases {
		orig := seeds[c.seed]
		fsys, err := Open(bytes.NewReader(orig), int64(len(orig)))
		if err != nil {
			t.Fatal(err)
		}
		b := bytes.Clone(orig)
		c.fn(b, fsys)
		var errs []error
		alloc := heapprobe.Allocated(func() {
			f, err := Open(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				errs = append(errs, err)
				return
			}
			for _, p := range []string{"/etc/multi", "/etc/fstab"} {
				_, err = f.ReadFile(p)
				errs = append(errs, err)
				_, err = f.FileRanges(p)
				errs = append(errs, err)
				_, err = f.RewriteFile(p, []byte("x\n"))
				errs = append(errs, err)
			}
			_, err = f.ReadDir("/")
			errs = append(errs, err)
		})
		err = errors.Join(errs...)
		t.Logf("%s: %d bytes allocated; %v", name, alloc, err)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if alloc > 1<<20 {
			t.Errorf("%s: allocated %d bytes (%v)", name, alloc, err)
		}
	}
}

// TestResolutionBounded: a link whose target walks into a directory and
// out again hundreds of times, followed forty times over, made one path
// resolution read tens of thousands of directory blocks on a filesystem
// of 256. Now the blocks one resolution reads are bounded by the
// filesystem's (and the lookups by 4096).
func TestResolutionBounded(t *testing.T) {
	oracle.Require(t, "mkfs.ext4")
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(strings.Repeat("d/../", 200)+"loop", filepath.Join(root, "loop")); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img")
	if err := os.WriteFile(img, make([]byte, tinySize), 0o644); err != nil {
		t.Fatal(err)
	}
	oracle.Run(t, "mkfs.ext4", "-q", "-F", "-d", root, "-b", "1024", "-N", "32", "-O", "^has_journal,^resize_inode", img)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var rerr error
	alloc := heapprobe.Allocated(func() { _, rerr = fsys.ReadFile("/loop/x") })
	if !errors.Is(rerr, ErrCorrupt) && !errors.Is(rerr, ErrLoop) {
		t.Fatalf("ReadFile = %v", rerr)
	}
	// Each lookup reads a 1 KiB block: 256 of them, not 16000.
	if alloc > 2<<20 {
		t.Fatalf("resolving allocated %d bytes (%v)", alloc, rerr)
	}
}

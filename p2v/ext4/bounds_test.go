package ext4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/standbykit/standbykit/internal/heapprobe"
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

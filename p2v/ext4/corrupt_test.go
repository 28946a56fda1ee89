package ext4

import (
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flipReader is r with the byte at off XORed with mask.
type flipReader struct {
	r    io.ReaderAt
	off  int64
	mask byte
}

func (f flipReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.r.ReadAt(p, off)
	if f.off >= off && f.off < off+int64(n) {
		p[f.off-off] ^= f.mask
	}
	return n, err
}

func variantNamed(t *testing.T, name string) variant {
	for _, v := range variants {
		if v.name == name {
			return v
		}
	}
	t.Fatalf("no variant %s", name)
	return variant{}
}

// TestCorrupt flips single bytes of metadata and checks the error each
// flip gets: checksum mismatches with metadata_csum (and uninit_bg for
// group descriptors), structural errors without.
func TestCorrupt(t *testing.T) {
	type probe func(fsys *FS) error
	readFile := func(p string) probe {
		return func(fsys *FS) error { _, err := fsys.ReadFile(p); return err }
	}
	readDir := func(p string) probe {
		return func(fsys *FS) error { _, err := fsys.ReadDir(p); return err }
	}
	fileRanges := func(p string) probe {
		return func(fsys *FS) error { _, err := fsys.FileRanges(p); return err }
	}

	for _, tc := range []struct {
		variant string
		name    string
		off     func(t *testing.T, img string, bs int64) int64
		mask    byte
		probe   probe // nil: Open fails
		want    error
	}{
		{"ext4-4k", "superblock magic", func(*testing.T, string, int64) int64 { return 1024 + 0x38 }, 0x01, nil, ErrNotExt4},
		{"ext4-4k", "superblock label", func(*testing.T, string, int64) int64 { return 1024 + 0x78 }, 0x20, nil, ErrChecksum},
		{"ext4-4k", "superblock block size", func(*testing.T, string, int64) int64 { return 1024 + 0x18 }, 0x10, nil, ErrChecksum},
		{"ext4-4k", "group descriptor 0", func(_ *testing.T, _ string, bs int64) int64 { return bs + 0x0C }, 0x01, nil, ErrChecksum},
		{"ext4-1k-uninitbg-32bit-metabg", "group descriptor 0 (crc16)", func(_ *testing.T, _ string, bs int64) int64 { return 2*bs + 0x0C }, 0x01, nil, ErrChecksum},
		{"ext4-4k", "root inode", func(t *testing.T, img string, bs int64) int64 { return inodeLoc(t, img, "/", int(bs)) + 0x10 }, 0x01,
			readFile("/etc/fstab"), ErrChecksum},
		{"ext4-4k", "fstab inode", func(t *testing.T, img string, bs int64) int64 { return inodeLoc(t, img, "/etc/fstab", int(bs)) + 0x10 }, 0x01,
			readFile("/etc/abs"), ErrChecksum},
		{"ext4-1k-csum-128", "fstab inode, 128 bytes", func(t *testing.T, img string, bs int64) int64 {
			return inodeLoc(t, img, "/etc/fstab", int(bs)) + 0x4
		}, 0x01, readFile("/etc/fstab"), ErrChecksum},
		{"ext4-4k", "extent tree block", func(t *testing.T, img string, bs int64) int64 {
			_, blk := extentDepth(t, img, "/fragged")
			require.NotZero(t, blk)
			return blk*bs + 12 + 12*3 + 2
		}, 0x01, fileRanges("/fragged"), ErrChecksum},
		{"ext4-4k", "directory block", func(t *testing.T, img string, bs int64) int64 {
			return dataBlocks(t, img, "/etc")[0]*bs + 30
		}, 0x01, readDir("/etc"), ErrChecksum},
		{"ext4-1k-uninitbg-32bit-metabg", "extent header magic", func(t *testing.T, img string, bs int64) int64 {
			return inodeLoc(t, img, "/etc/fstab", int(bs)) + 0x28
		}, 0x01, readFile("/etc/fstab"), ErrCorrupt},
		{"ext4-1k-uninitbg-32bit-metabg", "extent start beyond the filesystem", func(t *testing.T, img string, bs int64) int64 {
			return inodeLoc(t, img, "/etc/fstab", int(bs)) + 0x28 + 12 + 11
		}, 0x80, readFile("/etc/fstab"), ErrCorrupt},
		{"ext4-1k-uninitbg-32bit-metabg", "extent index beyond the filesystem", func(t *testing.T, img string, bs int64) int64 {
			return inodeLoc(t, img, "/fragged", int(bs)) + 0x28 + 12 + 7
		}, 0x80, readFile("/fragged"), ErrCorrupt},
		{"ext4-1k-uninitbg-32bit-metabg", "directory record length", func(t *testing.T, img string, bs int64) int64 {
			return dataBlocks(t, img, "/etc")[0]*bs + 4
		}, 0x02, readDir("/etc"), ErrCorrupt},
		{"ext3-1k", "double indirect pointer", func(t *testing.T, img string, bs int64) int64 {
			return inodeLoc(t, img, "/big", int(bs)) + 0x28 + 13*4 + 3
		}, 0x40, readFile("/big"), ErrCorrupt},
		{"ext2-4k", "directory entry name length", func(t *testing.T, img string, bs int64) int64 {
			return dataBlocks(t, img, "/etc")[0]*bs + 6
		}, 0x80, readDir("/etc"), ErrCorrupt},
	} {
		t.Run(tc.variant+"/"+tc.name, func(t *testing.T) {
			v := variantNamed(t, tc.variant)
			img := image(t, v)
			f, err := os.Open(img)
			require.NoError(t, err)
			defer f.Close()
			// Unchanged, the probe succeeds.
			good, err := Open(f, imageSize)
			require.NoError(t, err)
			if tc.probe != nil {
				require.NoError(t, tc.probe(good))
			}
			r := flipReader{r: f, off: tc.off(t, img, int64(v.blockSize)), mask: tc.mask}
			fsys, err := Open(r, imageSize)
			if tc.probe == nil {
				assert.ErrorIs(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			err = tc.probe(fsys)
			assert.ErrorIs(t, err, tc.want)
			t.Log(err)
		})
	}
}

package xfs

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"
)

// patched reads r with data laid over it at off.
type patched struct {
	r    io.ReaderAt
	off  int64
	data []byte
}

func (p patched) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.r.ReadAt(b, off)
	for i := range b[:n] {
		if o := off + int64(i) - p.off; o >= 0 && o < int64(len(p.data)) {
			b[i] = p.data[o]
		}
	}
	return n, err
}

func v5Image(t *testing.T) *image {
	for _, im := range testImages(t) {
		if im.name == "v5" {
			return im
		}
	}
	t.Fatal("no v5 image")
	return nil
}

// withBlock returns the image with the block at off changed by fn.
func withBlock(t *testing.T, im *image, off, n int64, fn func([]byte)) io.ReaderAt {
	b := make([]byte, n)
	if _, err := im.f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	fn(b)
	return patched{im.f, off, b}
}

func resum(b []byte, off int) {
	binary.LittleEndian.PutUint32(b[off:], 0)
	binary.LittleEndian.PutUint32(b[off:], crc32.Checksum(b, castagnoli))
}

func TestCorruptSuperblock(t *testing.T) {
	im := v5Image(t)
	fsys := openImage(t, im)
	sect := int64(fsys.sectSize)
	cases := []struct {
		name string
		fn   func([]byte)
		want error
	}{
		{"crc", func(b []byte) { b[224] ^= 1 }, ErrChecksum},
		{"field", func(b []byte) { b[88] ^= 0x40 }, ErrChecksum},
		{"magic", func(b []byte) { b[0] = 'Y' }, ErrNotXFS},
		{"needsrepair", func(b []byte) { b[219] |= incompatNeedsRepair; resum(b, 224) }, ErrUnsupported},
		{"unknown-incompat", func(b []byte) { b[216] |= 0x80; resum(b, 224) }, ErrUnsupported},
		{"version", func(b []byte) { b[101] = b[101]&0xf0 | 6; resum(b, 224) }, ErrUnsupported},
		{"blocksize", func(b []byte) { b[120] = 20; resum(b, 224) }, ErrCorrupt},
		{"agcount", func(b []byte) { binary.BigEndian.PutUint32(b[88:], 0); resum(b, 224) }, ErrCorrupt},
	}
	for _, c := range cases {
		r := withBlock(t, im, 0, sect, c.fn)
		if _, err := Open(r, im.size); !errors.Is(err, c.want) {
			t.Errorf("%s: Open = %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := Open(io.NewSectionReader(im.f, 0, 100), 100); !errors.Is(err, ErrNotXFS) {
		t.Errorf("100-byte image: Open = %v, want ErrNotXFS", err)
	}
}

func TestCorruptMetadata(t *testing.T) {
	im := v5Image(t)
	fsys := openImage(t, im)

	// A truncated image: the superblock reads, /etc lies beyond the end.
	const cut = 1 << 20
	tr, err := Open(io.NewSectionReader(im.f, 0, cut), cut)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.ReadFile("/etc/fstab"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated image: ReadFile = %v, want ErrCorrupt", err)
	}

	// A flipped bit in an inode and in a directory block.
	in, err := fsys.Lookup("/etc/fstab")
	if err != nil {
		t.Fatal(err)
	}
	ioff, _ := fsys.inodeOffset(in.Num)
	r := withBlock(t, im, ioff, int64(fsys.inodeSize), func(b []byte) { b[60] ^= 1 })
	bad, _ := Open(r, im.size)
	if _, err := bad.ReadFile("/etc/fstab"); !errors.Is(err, ErrChecksum) {
		t.Errorf("bad inode: ReadFile = %v, want ErrChecksum", err)
	}
	r = withBlock(t, im, ioff, int64(fsys.inodeSize), func(b []byte) { b[0] = 'X'; resum(b, 100) })
	bad, _ = Open(r, im.size)
	if _, err := bad.ReadFile("/etc/fstab"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad inode magic: ReadFile = %v, want ErrCorrupt", err)
	}

	for _, d := range []string{"/d60", "/d2000", "/d6000"} {
		din, err := fsys.Lookup(d)
		if err != nil {
			t.Fatal(err)
		}
		ext, err := fsys.extents(&din)
		if err != nil || len(ext) == 0 {
			t.Fatal(d, err)
		}
		boff, _ := fsys.fsbOffset(ext[0].fsb, 1)
		r = withBlock(t, im, boff, fsys.blockSize, func(b []byte) { b[100] ^= 1 })
		bad, _ = Open(r, im.size)
		if _, err := bad.ReadDir(d); !errors.Is(err, ErrChecksum) {
			t.Errorf("%s: bad directory block: ReadDir = %v, want ErrChecksum", d, err)
		}
	}
}

// A regular file whose inode claims its data lives in the inode (local
// format, which only directories and symbolic links have; Linux refuses
// it) is corrupt: neither ReadFile nor FileRanges returns the inode's
// bytes as the file.
func TestLocalRegularFile(t *testing.T) {
	im := v5Image(t)
	fsys := openImage(t, im)
	in, err := fsys.Lookup("/etc/fstab")
	if err != nil {
		t.Fatal(err)
	}
	if in.Format == fmtLocal {
		t.Fatal("fstab is already local")
	}
	ioff, _ := fsys.inodeOffset(in.Num)
	const diFormat, diCRC = 5, 100
	r := withBlock(t, im, ioff, int64(fsys.inodeSize), func(b []byte) { b[diFormat] = fmtLocal; resum(b, diCRC) })
	bad, err := Open(r, im.size)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bad.Lookup("/etc/fstab")
	if err != nil || got.Format != fmtLocal {
		t.Fatalf("the patched inode reads as format %d (%v), want local", got.Format, err)
	}
	if _, err := bad.ReadFile("/etc/fstab"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ReadFile = %v, want ErrCorrupt", err)
	}
	if _, err := bad.FileRanges("/etc/fstab"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("FileRanges = %v, want ErrCorrupt", err)
	}
}

package xfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/standbykit/standbykit/internal/fuzzimage"
	"github.com/standbykit/standbykit/internal/heapprobe"
)

// v4Seed returns the v4 fuzz seed (no checksums, so tests can edit it)
// and the filesystem it holds.
func v4Seed(t *testing.T) ([]byte, *FS) {
	t.Helper()
	data, err := fuzzimage.ReadCorpusFile(filepath.Join("testdata", "fuzz", "FuzzOpen", "v4"))
	if err != nil {
		t.Skipf("no v4 seed (mkfs.xfs may refuse V4 filesystems): %v", err)
	}
	b := fuzzimage.Decode(data, fuzzMaxImage).Bytes()
	fsys, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return b, fsys
}

// inodeBytes returns the bytes of the inode at path in b.
func inodeBytes(t *testing.T, b []byte, fsys *FS, path string) []byte {
	t.Helper()
	in, err := fsys.resolve(path, false)
	if err != nil {
		t.Fatal(err)
	}
	off, _ := fsys.inodeOffset(in.Num)
	return b[off : off+int64(fsys.inodeSize)]
}

// bmbtDAG makes /grub.cfg of the v4 seed a btree-format file whose root
// names one node block that names one leaf block of full records many
// times, in a 64 MiB image: the walk used to read that leaf once per
// reference, up to the filesystem's block count, collecting millions of
// extents before checking them. It returns the sparse FuzzOpen input.
func bmbtDAG(t *testing.T) []byte {
	b, fsys := v4Seed(t)
	raw := inodeBytes(t, b, fsys, "/grub.cfg")
	bs := fsys.blockSize
	node := uint64(int64(len(b))/bs + 1)
	leaf := node + 1
	raw[5] = fmtBtree
	be.PutUint32(raw[76:], 0xffffffff) // di_nextents
	forkEnd := fsys.inodeSize
	if fo := int(raw[82]); fo != 0 {
		forkEnd = coreSizeV2 + fo*8
	}
	fork := raw[coreSizeV2:forkEnd]
	maxr := (len(fork) - 4) / 16
	be.PutUint16(fork, 2)
	be.PutUint16(fork[2:], uint16(maxr))
	for i := range maxr {
		be.PutUint64(fork[4+maxr*8+i*8:], node)
	}
	blocks := make([]byte, 2*bs)
	nodeBlk, leafBlk := blocks[:bs], blocks[bs:]
	blkMax := (int(bs) - 24) / 16
	copy(nodeBlk, "BMAP")
	be.PutUint16(nodeBlk[4:], 1)
	be.PutUint16(nodeBlk[6:], uint16(blkMax))
	for i := range blkMax {
		be.PutUint64(nodeBlk[24+blkMax*8+i*8:], leaf)
	}
	copy(leafBlk, "BMAP")
	be.PutUint16(leafBlk[6:], uint16(blkMax))
	for i := range blkMax {
		// logical block i, filesystem block 1, one block
		be.PutUint64(leafBlk[24+16*i:], uint64(i)<<9)
		be.PutUint64(leafBlk[24+16*i+8:], 1<<21|1)
	}
	return fuzzimage.Encode(64<<20, append(fuzzimage.NonZero(0, b), fuzzimage.Chunk{Off: int64(node) * bs, Data: blocks}))
}

// TestBmbtSharedBlocks is the regression test of a bmap btree naming one
// block many times.
func TestBmbtSharedBlocks(t *testing.T) {
	input := bmbtDAG(t)
	path := filepath.Join("testdata", "fuzz", "FuzzOpen", "regress-bmbt-shared-blocks")
	if os.Getenv("STANDBYKIT_WRITE_SEEDS") == "1" {
		if err := fuzzimage.WriteCorpusFile(path, input); err != nil {
			t.Fatal(err)
		}
	}
	if committed, err := fuzzimage.ReadCorpusFile(path); err != nil || !bytes.Equal(committed, input) {
		t.Errorf("%s is missing or stale (%v): run STANDBYKIT_WRITE_SEEDS=1 go test -run TestBmbtSharedBlocks ./p2v/xfs", path, err)
	}
	img := fuzzimage.Decode(input, fuzzMaxImage)
	fsys, err := Open(img, img.Size())
	if err != nil {
		t.Fatal(err)
	}
	var rerr error
	alloc := heapprobe.Allocated(func() { _, rerr = fsys.FileRanges("/grub.cfg") })
	if !errors.Is(rerr, ErrCorrupt) {
		t.Fatalf("FileRanges = %v, want ErrCorrupt", rerr)
	}
	if alloc > 1<<20 {
		t.Fatalf("FileRanges allocated %d bytes (%v)", alloc, rerr)
	}
}

// TestClaimsBounded feeds filesystems whose superblock and inodes claim
// enormous sizes and counts: each read is refused, or bounded by what the
// image holds, without allocating what is claimed.
func TestClaimsBounded(t *testing.T) {
	b, fsys := v4Seed(t)
	edit := func(fn func(b []byte)) []byte {
		c := bytes.Clone(b)
		fn(c)
		return c
	}
	cases := map[string][]byte{
		"dblocks and agcount": edit(func(b []byte) {
			be.PutUint64(b[8:], 1<<62)
			be.PutUint32(b[88:], 0xffffffff)
		}),
		"file size": edit(func(b []byte) {
			be.PutUint64(inodeBytes(t, b, fsys, "/grub.cfg")[56:], 1<<62)
		}),
		"file extents": edit(func(b []byte) {
			be.PutUint32(inodeBytes(t, b, fsys, "/grub.cfg")[76:], 0xffffffff)
		}),
		"directory size and extents": edit(func(b []byte) {
			root := inodeBytes(t, b, fsys, "/")
			be.PutUint64(root[56:], 1<<62)
			be.PutUint32(root[76:], 0xffffffff)
		}),
		"extent length": edit(func(b []byte) {
			in := inodeBytes(t, b, fsys, "/grub.cfg")
			be.PutUint64(in[coreSizeV2+8:], be.Uint64(in[coreSizeV2+8:])|(1<<21-1)) // 2^21-1 blocks
		}),
	}
	for name, img := range cases {
		var errs []error
		alloc := heapprobe.Allocated(func() {
			f, err := Open(bytes.NewReader(img), int64(len(img)))
			if err != nil {
				errs = append(errs, err)
				return
			}
			_, err = f.ReadDir("/")
			errs = append(errs, err)
			_, err = f.ReadFile("/grub.cfg")
			errs = append(errs, err)
			_, err = f.FileRanges("/grub.cfg")
			errs = append(errs, err)
		})
		if errors.Join(errs...) == nil {
			t.Errorf("%s: no error", name)
		}
		if alloc > 1<<20 {
			t.Errorf("%s: allocated %d bytes (%v)", name, alloc, errors.Join(errs...))
		}
	}
}

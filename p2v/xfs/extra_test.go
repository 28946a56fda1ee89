package xfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/internal/oracle"
)

// TestDirExtents compares the extent maps of the block, node and btree
// directories (the btree one has dozens of extents) with xfs_db's bmap.
func TestDirExtents(t *testing.T) {
	for _, im := range testImages(t) {
		oracle.Require(t, "xfs_db")
		fsys := openImage(t, im)
		for _, d := range []string{"/d60", "/d2000", "/d6000"} {
			in, err := fsys.Lookup(d)
			if err != nil {
				t.Fatal(err)
			}
			ext, err := fsys.extents(&in)
			if err != nil {
				t.Fatalf("%s: %s: %v", im.name, d, err)
			}
			var got []string
			for _, e := range ext {
				got = append(got, fmt.Sprintf("%d %d %d %d", e.lblk, e.fsb>>fsys.agBlkLog, e.fsb&(1<<fsys.agBlkLog-1), e.count))
			}
			var want []string
			out := oracle.Run(t, "xfs_db", "-r", "-c", "path "+d, "-c", "bmap", im.path)
			for _, m := range bmapRE.FindAllStringSubmatch(string(out), -1) {
				want = append(want, fmt.Sprintf("%s %s %s %s", m[1], m[3], m[4], m[5]))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") || len(want) == 0 {
				t.Errorf("%s: %s: extents\n%s\nxfs_db bmap:\n%s", im.name, d, got, want)
			}
		}
	}
}

// TestUnwritten marks the extent of /etc/fstab unwritten (fixing up the
// inode checksum): the file then reads as zeros.
func TestUnwritten(t *testing.T) {
	im := v5Image(t)
	fsys := openImage(t, im)
	in, err := fsys.Lookup("/etc/fstab")
	if err != nil {
		t.Fatal(err)
	}
	if in.Format != fmtExtents || in.nextents != 1 {
		t.Fatalf("/etc/fstab: format %d with %d extents", in.Format, in.nextents)
	}
	off, _ := fsys.inodeOffset(in.Num)
	r := withBlock(t, im, off, int64(fsys.inodeSize), func(b []byte) {
		b[coreSizeV3] |= 0x80
		resum(b, 100)
	})
	u, err := Open(r, im.size)
	if err != nil {
		t.Fatal(err)
	}
	b, err := u.ReadFile("/etc/fstab")
	if err != nil || !bytes.Equal(b, make([]byte, len(fstab))) {
		t.Errorf("ReadFile = %q, %v; want %d zeros", b, err, len(fstab))
	}
	rs, err := u.FileRanges("/etc/fstab")
	if err != nil || len(rs) != 1 || rs[0] != (Range{Offset: -1, Length: int64(len(fstab)), Zero: true}) {
		t.Errorf("FileRanges = %v, %v", rs, err)
	}
	// Moving the extent to logical block 1 leaves a hole before it.
	r = withBlock(t, im, off, int64(fsys.inodeSize), func(b []byte) {
		l0 := binary.BigEndian.Uint64(b[coreSizeV3:])
		binary.BigEndian.PutUint64(b[coreSizeV3:], l0|1<<9)
		binary.BigEndian.PutUint64(b[56:], uint64(fsys.blockSize)+uint64(len(fstab)))
		resum(b, 100)
	})
	h, err := Open(r, im.size)
	if err != nil {
		t.Fatal(err)
	}
	b, err = h.ReadFile("/etc/fstab")
	want := append(make([]byte, fsys.blockSize), fstab...)
	if err != nil || !bytes.Equal(b, want) {
		t.Errorf("ReadFile with a hole = %d bytes, %v", len(b), err)
	}
}

// TestMetaUUID changes the UUID with xfs_admin, which on v5 sets the
// meta_uuid feature: metadata keeps the old UUID, UUID reports the new.
func TestMetaUUID(t *testing.T) {
	oracle.Require(t, "mkfs.xfs")
	oracle.Require(t, "xfs_admin")
	oracle.Require(t, "xfs_db")
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 320<<20); err != nil {
		t.Fatal(err)
	}
	var pb strings.Builder
	pb.WriteString("/dev/null\n0 0\nd--755 0 0\nd60 d--755 0 0\n")
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&pb, "f%02d l--777 0 0 target\n", i)
	}
	pb.WriteString("$\n$\n")
	proto := filepath.Join(t.TempDir(), "proto")
	if err := os.WriteFile(proto, []byte(pb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	oracle.Run(t, "mkfs.xfs", "-q", "-f", "-p", proto, "-d", "name="+img+",size=320m")
	oracle.Run(t, "xfs_admin", "-U", "generate", img)
	out := oracle.Run(t, "xfs_db", "-r", "-c", "sb 0", "-c", "p uuid", "-c", "p meta_uuid", "-c", "p features_incompat", img)
	vals := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, " = "); ok {
			vals[k] = v
		}
	}
	inc, _ := strconv.ParseUint(vals["features_incompat"], 0, 32)
	if inc&incompatMetaUUID == 0 {
		t.Fatalf("xfs_admin -U did not set meta_uuid: %s", out)
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
	if fsys.UUID() != vals["uuid"] || vals["uuid"] == vals["meta_uuid"] {
		t.Errorf("UUID() = %s; xfs_db: uuid %s, meta_uuid %s", fsys.UUID(), vals["uuid"], vals["meta_uuid"])
	}
	// A block directory: its header carries the metadata UUID.
	if ents, err := fsys.ReadDir("/d60"); err != nil || len(ents) != 60 {
		t.Errorf("ReadDir(/d60) = %d entries, %v", len(ents), err)
	}
	if l, err := fsys.Readlink("/d60/f07"); err != nil || l != "target" {
		t.Errorf("Readlink(/d60/f07) = %q, %v", l, err)
	}
	if _, err := fsys.ReadFile("/nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadFile(/nope) = %v", err)
	}
}

package xfs

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/internal/oracle"
)

func TestFiles(t *testing.T) {
	for _, im := range testImages(t) {
		t.Run(im.name, func(t *testing.T) {
			fsys := openImage(t, im)
			for p, want := range im.tr.files {
				got, err := fsys.ReadFile(p)
				if len(want) > MaxReadSize {
					// Too large to hold: refused by ReadFile, read in place.
					if !errors.Is(err, ErrTooLarge) {
						t.Errorf("ReadFile(%q) of %d bytes: %v, want ErrTooLarge", p, len(want), err)
					}
					got, err = readInPlace(fsys, p)
				}
				if err != nil {
					t.Errorf("ReadFile(%q): %v", p, err)
					continue
				}
				if !bytes.Equal(got, want) {
					t.Errorf("ReadFile(%q): %d bytes differ from the %d-byte source", p, len(got), len(want))
				}
			}
			for p, want := range im.tr.links {
				got, err := fsys.Readlink(p)
				if err != nil || got != want {
					t.Errorf("Readlink(%q) = %q, %v; want %q", p, got, err, want)
				}
			}
			for _, p := range []string{"/etc/short", "/etc/abs", "/etc/../etc/./short", "/boot/grub2/../../etc/fstab"} {
				if _, err := fsys.ReadFile(p); err != nil {
					t.Errorf("ReadFile(%q): %v", p, err)
				}
			}
			if b, err := fsys.ReadFile("/etc/abs"); err != nil || string(b) != grubCfg {
				t.Errorf("ReadFile(/etc/abs) = %q, %v", b, err)
			}
			if _, err := fsys.ReadFile("/etc/long"); !errors.Is(err, ErrNotFound) {
				t.Errorf("ReadFile(/etc/long) = %v, want ErrNotFound", err)
			}
			if _, err := fsys.ReadFile("/loop"); !errors.Is(err, ErrLoop) {
				t.Errorf("ReadFile(/loop) = %v, want ErrLoop", err)
			}
			if _, err := fsys.ReadFile("/etc/nope"); !errors.Is(err, ErrNotFound) {
				t.Errorf("ReadFile(/etc/nope) = %v, want ErrNotFound", err)
			}
			if _, err := fsys.ReadFile("/etc/fstab/x"); !errors.Is(err, ErrNotDir) {
				t.Errorf("ReadFile(/etc/fstab/x) = %v, want ErrNotDir", err)
			}
			if _, err := fsys.ReadDir("/etc/fstab"); !errors.Is(err, ErrNotDir) {
				t.Errorf("ReadDir(/etc/fstab) = %v, want ErrNotDir", err)
			}
			in, err := fsys.Lookup("/etc/short")
			if err != nil || !in.IsSymlink() {
				t.Errorf("Lookup(/etc/short) = %+v, %v", in, err)
			}
			in, err = fsys.LookupFollow("/etc/short")
			if err != nil || !in.IsRegular() || in.Size != int64(len(osRel)) {
				t.Errorf("LookupFollow(/etc/short) = %+v, %v", in, err)
			}
			in, err = fsys.Lookup("/boot")
			if err != nil || !in.IsDir() || in.Mode&0o777 != 0o555 {
				t.Errorf("Lookup(/boot) = %+v, %v", in, err)
			}
		})
	}
}

// TestReadDir compares directory listings with xfs_db's ls.
func TestReadDir(t *testing.T) {
	for _, im := range testImages(t) {
		t.Run(im.name, func(t *testing.T) {
			oracle.Require(t, "xfs_db")
			fsys := openImage(t, im)
			for _, dir := range []string{"/", "/etc", "/boot", "/etc/sysconfig/network-scripts", "/d5", "/d60", "/d2000", "/d6000"} {
				ents, err := fsys.ReadDir(dir)
				if err != nil {
					t.Errorf("ReadDir(%q): %v", dir, err)
					continue
				}
				var got []string
				for _, e := range ents {
					got = append(got, fmt.Sprintf("%s %d", e.Name, e.Inode))
				}
				var want []string
				out := oracle.Run(t, "xfs_db", "-r", "-c", "ls "+dir, im.path)
				for _, line := range strings.Split(string(out), "\n") {
					f := strings.Fields(line)
					if len(f) < 6 || f[len(f)-1] != "(good)" {
						continue
					}
					name := f[5]
					if name == "." || name == ".." {
						continue
					}
					want = append(want, name+" "+f[1])
				}
				sort.Strings(got)
				sort.Strings(want)
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("ReadDir(%q): %d entries, xfs_db lists %d", dir, len(got), len(want))
				}
				if n, ok := im.tr.dirs[dir]; ok && len(got) != n {
					t.Errorf("ReadDir(%q): %d entries, want %d", dir, len(got), n)
				}
			}
		})
	}
}

var bmapRE = regexp.MustCompile(`data offset (\d+) startblock (\d+) \((\d+)/(\d+)\) count (\d+) flag (\d+)`)

// TestFileRanges compares FileRanges with xfs_db's bmap.
func TestFileRanges(t *testing.T) {
	for _, im := range testImages(t) {
		t.Run(im.name, func(t *testing.T) {
			oracle.Require(t, "xfs_db")
			fsys := openImage(t, im)
			sb := oracle.Run(t, "xfs_db", "-r", "-c", "sb 0", "-c", "p uuid", "-c", "p agblocks", "-c", "p blocksize", im.path)
			vals := map[string]string{}
			for _, line := range strings.Split(string(sb), "\n") {
				if k, v, ok := strings.Cut(line, " = "); ok {
					vals[k] = v
				}
			}
			if got := fsys.UUID(); got != vals["uuid"] {
				t.Errorf("UUID() = %s, xfs_db says %s", got, vals["uuid"])
			}
			agblocks, _ := strconv.ParseInt(vals["agblocks"], 10, 64)
			bs, _ := strconv.ParseInt(vals["blocksize"], 10, 64)
			for _, p := range []string{"/boot/initramfs-x.img", "/etc/fstab", "/boot/grub2/grub.cfg"} {
				size := int64(len(im.tr.files[p]))
				rs, err := fsys.FileRanges(p)
				if err != nil {
					t.Errorf("FileRanges(%q): %v", p, err)
					continue
				}
				out := oracle.Run(t, "xfs_db", "-r", "-c", "path "+p, "-c", "bmap", im.path)
				var want []Range
				var pos int64
				nExt := 0
				for _, m := range bmapRE.FindAllStringSubmatch(string(out), -1) {
					var v [6]int64
					for i := range v {
						v[i], _ = strconv.ParseInt(m[i+1], 10, 64)
					}
					nExt++
					if v[0]*bs != pos {
						t.Fatalf("%s: hole in xfs_db bmap at %d: %s", p, pos, out)
					}
					r := Range{Offset: (v[2]*agblocks + v[3]) * bs, Length: min(v[4]*bs, size-pos)}
					pos += r.Length
					if n := len(want); n > 0 && want[n-1].Offset+want[n-1].Length == r.Offset {
						want[n-1].Length += r.Length
					} else {
						want = append(want, r)
					}
				}
				if fmt.Sprint(rs) != fmt.Sprint(want) {
					t.Errorf("FileRanges(%q) = %v, xfs_db bmap gives %v", p, rs, want)
				}
				if nExt == 0 {
					t.Errorf("%s: xfs_db bmap shows no extents: %s", p, out)
				}
				// the ranges read back as the file
				var buf bytes.Buffer
				for _, r := range rs {
					b := make([]byte, r.Length)
					if _, err := im.f.ReadAt(b, r.Offset); err != nil {
						t.Fatal(err)
					}
					buf.Write(b)
				}
				if !bytes.Equal(buf.Bytes(), im.tr.files[p]) {
					t.Errorf("FileRanges(%q) do not read back as the file", p)
				}
			}
		})
	}
}

// TestRemoteSymlinkFixup checks with xfs_db that the remote symbolic link
// block the tests write into v5 images is valid.
func TestRemoteSymlinkFixup(t *testing.T) {
	for _, im := range testImages(t) {
		if im.name == "v4" {
			continue
		}
		oracle.Require(t, "xfs_db")
		out := string(oracle.Run(t, "xfs_db", "-r", "-c", "path /etc/long", "-c", "dblock 0", "-c", "type symlink", "-c", "p", im.path))
		if !strings.Contains(out, "magic = 0x58534c4d") || !strings.Contains(out, "crc = 0x") || !strings.Contains(out, "(correct)") {
			t.Errorf("%s: xfs_db reads the symbolic link block as:\n%s", im.name, out)
		}
	}
}

// TestDirFormats checks with xfs_db that the test directories cover every
// data fork format: local (shortform), extents (block, node) and btree.
func TestDirFormats(t *testing.T) {
	for _, im := range testImages(t) {
		oracle.Require(t, "xfs_db")
		fsys := openImage(t, im)
		formats := map[uint8]bool{}
		for _, d := range []string{"/d5", "/d60", "/d2000", "/d6000"} {
			in, err := fsys.Lookup(d)
			if err != nil {
				t.Fatal(err)
			}
			out := string(oracle.Run(t, "xfs_db", "-r", "-c", "path "+d, "-c", "p core.format", im.path))
			if !strings.Contains(out, fmt.Sprintf("core.format = %d ", in.Format)) {
				t.Errorf("%s: %s: format %d, xfs_db says %s", im.name, d, in.Format, out)
			}
			formats[in.Format] = true
		}
		t.Logf("%s: directory formats %v", im.name, formats)
		if !formats[fmtLocal] || !formats[fmtExtents] || !formats[fmtBtree] {
			t.Errorf("%s: directory formats %v, want local, extents and btree", im.name, formats)
		}
	}
}

// readInPlace reads the file at path from its ranges.
func readInPlace(fsys *FS, path string) ([]byte, error) {
	rs, err := fsys.FileRanges(path)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, r := range rs {
		b := make([]byte, r.Length)
		if !r.Zero {
			if _, err := fsys.r.ReadAt(b, r.Offset); err != nil {
				return nil, err
			}
		}
		out = append(out, b...)
	}
	return out, nil
}

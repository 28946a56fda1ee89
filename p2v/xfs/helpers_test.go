package xfs

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/standbykit/standbykit/internal/oracle"
)

// tree is the content put into every test filesystem, by path.
type tree struct {
	dir     string            // where the source files live
	files   map[string][]byte // absolute path in the filesystem -> content
	links   map[string]string // absolute path -> target
	dirs    map[string]int    // directory -> number of entries
	longTgt string
}

const (
	fstab   = "UUID=1234 / xfs defaults 0 0\nUUID=5678 /boot xfs defaults 0 0\n"
	osRel   = "NAME=\"Red Hat Enterprise Linux\"\nVERSION_ID=\"9.4\"\nID=\"rhel\"\n"
	grubCfg = "set default=0\nmenuentry 'RHEL' {\n  linux /vmlinuz-5.14 root=/dev/mapper/rhel-root\n  initrd /initramfs-x.img\n}\n"
)

// writeProto writes the source files and a mkfs.xfs protofile for them.
func writeProto(t testing.TB, dir string) (*tree, string) {
	t.Helper()
	tr := &tree{dir: dir, files: map[string][]byte{}, links: map[string]string{}, dirs: map[string]int{}}
	rng := rand.New(rand.NewSource(1))
	initrd := make([]byte, 40<<20)
	rng.Read(initrd)
	tr.files["/etc/os-release"] = []byte(osRel)
	tr.files["/etc/fstab"] = []byte(fstab)
	tr.files["/boot/grub2/grub.cfg"] = []byte(grubCfg)
	tr.files["/boot/initramfs-x.img"] = initrd
	tr.files["/empty"] = nil
	tr.longTgt = "/etc/" + strings.Repeat("very-long-component/", 30) + "os-release"
	tr.links["/etc/short"] = "os-release"
	tr.links["/etc/long"] = tr.longTgt
	tr.links["/etc/abs"] = "/boot/grub2/grub.cfg"
	tr.links["/loop"] = "/loop"

	n := 0
	src := func(data []byte) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("src%d", n))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var b strings.Builder
	b.WriteString("/dev/null\n0 0\nd--755 0 0\n")
	fmt.Fprintf(&b, "empty ---644 0 0 %s\n", src(nil))
	b.WriteString("loop l--777 0 0 /loop\n")
	b.WriteString("etc d--755 0 0\n")
	fmt.Fprintf(&b, "os-release ---644 0 0 %s\n", src(tr.files["/etc/os-release"]))
	fmt.Fprintf(&b, "fstab ---644 0 0 %s\n", src(tr.files["/etc/fstab"]))
	fmt.Fprintf(&b, "short l--777 0 0 %s\n", tr.links["/etc/short"])
	fmt.Fprintf(&b, "long l--777 0 0 %s\n", tr.links["/etc/long"])
	fmt.Fprintf(&b, "abs l--777 0 0 %s\n", tr.links["/etc/abs"])
	b.WriteString("sysconfig d--755 0 0\nnetwork-scripts d--755 0 0\n")
	empty := src(nil)
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("ifcfg-eth%d", i)
		fmt.Fprintf(&b, "%s ---644 0 0 %s\n", name, empty)
		tr.files["/etc/sysconfig/network-scripts/"+name] = nil
	}
	b.WriteString("$\n$\n$\n")
	b.WriteString("boot d--555 0 0\n")
	fmt.Fprintf(&b, "initramfs-x.img ---600 0 0 %s\n", src(initrd))
	fmt.Fprintf(&b, "grub2 d--700 0 0\ngrub.cfg ---600 0 0 %s\n$\n", src(tr.files["/boot/grub2/grub.cfg"]))
	b.WriteString("$\n")
	for _, d := range []struct {
		name string
		n    int
	}{{"d5", 5}, {"d60", 60}, {"d2000", 2000}, {"d6000", 6000}} {
		fmt.Fprintf(&b, "%s d--755 0 0\n", d.name)
		for i := 0; i < d.n; i++ {
			fmt.Fprintf(&b, "entry-number-%05d ---644 0 0 %s\n", i, empty)
		}
		b.WriteString("$\n")
		tr.dirs["/"+d.name] = d.n
	}
	tr.dirs["/etc/sysconfig/network-scripts"] = 5
	b.WriteString("$\n")
	p := filepath.Join(dir, "proto")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return tr, p
}

type image struct {
	name string
	path string
	tr   *tree
	f    *os.File
	size int64
}

var (
	imagesOnce sync.Once
	imagesDir  string
	images     []*image
	imagesErr  error
	imagesTree *tree
)

// variants are the mkfs.xfs option sets tested.
var variants = []struct {
	name string
	args []string
}{
	{"v5", nil},
	{"v5-dir8k", []string{"-n", "size=8192"}},
	{"v4", []string{"-m", "crc=0", "-n", "ftype=0"}},
	{"v5-1k", []string{"-b", "size=1024", "-i", "size=512"}},
}

// testImages builds every variant once per test binary run.
func testImages(t *testing.T) []*image {
	t.Helper()
	oracle.Require(t, "mkfs.xfs")
	imagesOnce.Do(func() {
		dir, err := os.MkdirTemp("", "xfstest")
		if err != nil {
			imagesErr = err
			return
		}
		imagesDir = dir
		tr, proto := writeProto(t, dir)
		imagesTree = tr
		for _, v := range variants {
			p := filepath.Join(dir, v.name+".img")
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				imagesErr = err
				return
			}
			if err := os.Truncate(p, 320<<20); err != nil {
				imagesErr = err
				return
			}
			args := append([]string{"-q", "-f", "-p", proto}, v.args...)
			args = append(args, "-d", "name="+p+",size=320m")
			if out, err := oracle.Output("mkfs.xfs", args...); err != nil {
				if v.name == "v4" {
					continue // mkfs.xfs may refuse V4 filesystems
				}
				imagesErr = fmt.Errorf("mkfs.xfs %v: %v\n%s", args, err, out)
				return
			}
			if v.args == nil || v.args[0] != "-m" {
				if err := fixRemoteSymlink(p, "/etc/long"); err != nil {
					imagesErr = err
					return
				}
			}
			f, err := os.Open(p)
			if err != nil {
				imagesErr = err
				return
			}
			images = append(images, &image{name: v.name, path: p, tr: tr, f: f, size: 320 << 20})
		}
	})
	if imagesErr != nil {
		t.Fatal(imagesErr)
	}
	return images
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, im := range images {
		im.f.Close()
	}
	if imagesDir != "" {
		os.RemoveAll(imagesDir)
	}
	os.Exit(code)
}

func openImage(t *testing.T, im *image) *FS {
	t.Helper()
	fsys, err := Open(im.f, im.size)
	if err != nil {
		t.Fatalf("%s: Open: %v", im.name, err)
	}
	return fsys
}

// fixRemoteSymlink gives the one-block remote symbolic link at path in the
// v5 image img the XSLM header that mkfs.xfs 6.1 protofiles omit (xfs_repair
// -n reports the block as corrupt without it). TestRemoteSymlinkFixup
// checks the result with xfs_db.
func fixRemoteSymlink(img, path string) error {
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	fsys, err := Open(f, st.Size())
	if err != nil {
		return err
	}
	in, err := fsys.resolve(path, false)
	if err != nil {
		return err
	}
	ext, err := fsys.extents(in)
	if err != nil || len(ext) != 1 || ext[0].count != 1 {
		return fmt.Errorf("%s: %v extents (%v)", path, ext, err)
	}
	off, _ := fsys.fsbOffset(ext[0].fsb, 1)
	blk := make([]byte, fsys.blockSize)
	if _, err := f.ReadAt(blk, off); err != nil {
		return err
	}
	if string(blk[:4]) == "XSLM" {
		return nil
	}
	target := append([]byte(nil), blk[:in.Size]...)
	clear(blk)
	copy(blk, "XSLM")
	be.PutUint32(blk[4:], 0)
	be.PutUint32(blk[8:], uint32(in.Size))
	copy(blk[16:32], fsys.metaUUID[:])
	be.PutUint64(blk[32:], in.Num)
	be.PutUint64(blk[40:], uint64(off/512))
	copy(blk[56:], target)
	binary.LittleEndian.PutUint32(blk[12:], crc32.Checksum(blk, castagnoli))
	_, err = f.WriteAt(blk, off)
	return err
}

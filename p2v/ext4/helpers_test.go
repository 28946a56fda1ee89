package ext4

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/stretchr/testify/require"
)

// variant is one way of making a test filesystem.
type variant struct {
	name      string
	mkfs      string
	args      []string
	blockSize int
	extents   bool // files are extent-mapped
	inline    bool // small files and directories are inline
	csum      bool // metadata_csum
}

var variants = []variant{
	{name: "ext4-4k", mkfs: "mkfs.ext4", args: []string{"-b", "4096", "-O", "metadata_csum,64bit"},
		blockSize: 4096, extents: true, csum: true},
	{name: "ext4-1k-csum-128", mkfs: "mkfs.ext4", args: []string{"-b", "1024", "-I", "128", "-O", "metadata_csum,64bit,^has_journal"},
		blockSize: 1024, extents: true, csum: true},
	// 64 groups of 512 blocks: meta_bg puts the second descriptor block
	// in group 32.
	{name: "ext4-1k-uninitbg-32bit-metabg", mkfs: "mkfs.ext4", args: []string{"-b", "1024", "-g", "512",
		"-O", "^metadata_csum,uninit_bg,^64bit,^has_journal,meta_bg,^resize_inode"},
		blockSize: 1024, extents: true},
	{name: "ext4-inline", mkfs: "mkfs.ext4", args: []string{"-b", "4096", "-I", "1024", "-O", "metadata_csum,inline_data"},
		blockSize: 4096, extents: true, inline: true, csum: true},
	{name: "ext3-1k", mkfs: "mkfs.ext3", args: []string{"-b", "1024"}, blockSize: 1024},
	{name: "ext2-4k", mkfs: "mkfs.ext2", args: []string{"-b", "4096"}, blockSize: 4096},
}

const imageSize = 32 << 20

// fragFiles is how many files /frag gets before every other one is
// removed to make /fragged fragmented: with 1 KiB blocks enough for an
// extent tree of depth 2 (more than 4×84 extents).
func fragFiles(bs int) int {
	if bs == 1024 {
		return 800
	}
	return 300
}

const fstab = `# /etc/fstab: static file system information.
UUID=0a3407de-014b-458b-b5c1-848e92a327a3 /         ext4 errors=remount-ro 0 1
UUID=D0B4-3C5B                            /boot/efi vfat umask=0077        0 1
/dev/mapper/vg0-swap                      none      swap sw                0 0
`

var (
	imageDirOnce sync.Once
	imageDirPath string
	imageDirErr  error
)

// imageDir returns the directory test images and dumps go in, created
// on first use and removed by TestMain.
func imageDir() string {
	imageDirOnce.Do(func() {
		// Building and dumping filesystems writes thousands of small
		// files: prefer memory to a disk shared with other work.
		base := ""
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			base = "/dev/shm"
		}
		imageDirPath, imageDirErr = os.MkdirTemp(base, "ext4test")
		if imageDirErr != nil {
			imageDirPath, imageDirErr = os.MkdirTemp("", "ext4test")
		}
	})
	if imageDirErr != nil {
		panic(imageDirErr)
	}
	return imageDirPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if imageDirPath != "" {
		os.RemoveAll(imageDirPath)
	}
	os.Exit(code)
}

var built struct {
	sync.Mutex
	once map[string]*sync.Once
	path map[string]string
	err  map[string]error
}

// requireTools skips the test unless e2fsprogs is there.
func requireTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"mkfs.ext4", "debugfs", "e2fsck"} {
		oracle.Require(t, tool)
	}
}

// image returns the path of v's test filesystem, building it once per
// test binary run. Tests must not modify it.
func image(t testing.TB, v variant) string {
	t.Helper()
	requireTools(t)
	oracle.Require(t, v.mkfs)
	built.Lock()
	if built.once == nil {
		built.once, built.path, built.err = map[string]*sync.Once{}, map[string]string{}, map[string]error{}
	}
	once := built.once[v.name]
	if once == nil {
		once = &sync.Once{}
		built.once[v.name] = once
	}
	built.Unlock()
	once.Do(func() {
		p, err := buildImage(v)
		built.Lock()
		built.path[v.name], built.err[v.name] = p, err
		built.Unlock()
	})
	built.Lock()
	defer built.Unlock()
	if err := built.err[v.name]; err != nil {
		t.Fatalf("building %s: %v", v.name, err)
	}
	return built.path[v.name]
}

func run(tool string, args ...string) ([]byte, error) {
	out, err := oracle.Output(tool, args...)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return out, nil
}

// textBlock returns n bytes of text lines.
func textBlock(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, "line %d: %x\n", b.Len(), rng.Uint64())
	}
	return b.Bytes()[:n]
}

var trees struct {
	sync.Mutex
	once map[int]*sync.Once
	dir  map[int]string
	err  map[int]error
}

// tree returns the host directory tree mkfs -d copies into the images
// of block size bs, and the file debugfs writes as /fragged.
func tree(bs int) (root, fragged string, err error) {
	trees.Lock()
	if trees.once == nil {
		trees.once, trees.dir, trees.err = map[int]*sync.Once{}, map[int]string{}, map[int]error{}
	}
	once := trees.once[bs]
	if once == nil {
		once = &sync.Once{}
		trees.once[bs] = once
	}
	trees.Unlock()
	once.Do(func() {
		dir := filepath.Join(imageDir(), fmt.Sprintf("tree-%d", bs))
		err := buildTree(dir, bs)
		trees.Lock()
		trees.dir[bs], trees.err[bs] = dir, err
		trees.Unlock()
	})
	trees.Lock()
	defer trees.Unlock()
	dir := trees.dir[bs]
	return filepath.Join(dir, "root"), filepath.Join(dir, "fragged"), trees.err[bs]
}

func buildTree(dir string, bs int) error {
	root := filepath.Join(dir, "root")
	rng := rand.New(rand.NewPCG(1, uint64(bs)))
	files := map[string][]byte{
		"etc/fstab":    []byte(fstab),
		"etc/hostname": []byte("standby\n"),
		"etc/multi":    textBlock(rng, 2*bs+bs/2),
		"etc/big-text": textBlock(rng, 20*bs+7),
		"empty":        nil,
	}
	big := make([]byte, 600<<10)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	files["big"] = big
	for i := range 2000 {
		files[fmt.Sprintf("many/entry-%04d-with-a-longer-name", i)] = []byte(strconv.Itoa(i) + "\n")
	}
	for i := range fragFiles(bs) {
		files[fmt.Sprintf("frag/f%04d", i)] = textBlock(rng, bs*(1+rng.IntN(3))-rng.IntN(100))
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "emptydir"), 0o755); err != nil {
		return err
	}
	// A sparse file: 5000 bytes, a hole, 10000 bytes at 200000.
	f, err := os.Create(filepath.Join(root, "sparse"))
	if err != nil {
		return err
	}
	f.Write(bytes.Repeat([]byte("a"), 5000))
	f.WriteAt(bytes.Repeat([]byte("b"), 10000), 200000)
	if err := f.Close(); err != nil {
		return err
	}
	links := map[string]string{
		"etc/abs":    "/etc/fstab",
		"etc/rel":    "fstab",
		"etc/dotdot": "../etc/./fstab",
		"etc/long":   "/etc/" + strings.Repeat("./", 40) + "fstab", // a slow symlink
		"etclink":    "etc",
		"chain":      "etc/abs",
		"loop1":      "/loop2",
		"loop2":      "loop1",
		"dangling":   "/no/such/file",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			return err
		}
	}
	fragged := make([]byte, fragFiles(bs)*bs*2)
	for i := range fragged {
		fragged[i] = byte(rng.Uint32())
	}
	return os.WriteFile(filepath.Join(dir, "fragged"), fragged, 0o644)
}

func buildImage(v variant) (string, error) {
	dir := filepath.Join(imageDir(), v.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	root, host, err := tree(v.blockSize)
	if err != nil {
		return "", err
	}
	img := filepath.Join(dir, "img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Truncate(img, imageSize); err != nil {
		return "", err
	}
	args := append([]string{"-q", "-F", "-d", root}, v.args...)
	if _, err := run(v.mkfs, append(args, img)...); err != nil {
		return "", err
	}
	// Index the big directory (mke2fs -d writes it linearly).
	if out, err := oracle.Output("e2fsck", "-fyD", img); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			return "", fmt.Errorf("e2fsck -fyD: %v\n%s", err, out)
		}
	}
	// Thin out /frag and write /fragged into the holes.
	var cmds bytes.Buffer
	for i := 0; i < fragFiles(v.blockSize); i += 2 {
		fmt.Fprintf(&cmds, "rm /frag/f%04d\n", i)
	}
	fmt.Fprintf(&cmds, "write %s /fragged\n", host)
	if v.extents {
		fmt.Fprintf(&cmds, "fallocate /sparse 3 20\n")
	}
	cmdFile := filepath.Join(dir, "cmds")
	if err := os.WriteFile(cmdFile, cmds.Bytes(), 0o644); err != nil {
		return "", err
	}
	if _, err := run("debugfs", "-w", "-f", cmdFile, img); err != nil {
		return "", err
	}
	if _, err := run("e2fsck", "-fn", img); err != nil {
		return "", fmt.Errorf("the test image is not clean: %v", err)
	}
	return img, nil
}

// debugfs runs one debugfs request against img.
func debugfs(t testing.TB, img, req string) []byte {
	t.Helper()
	return oracle.Run(t, "debugfs", "-R", req, img)
}

// tempDir returns a new directory under imageDir, removed when t ends.
func tempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp(imageDir(), "t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// rdump dumps the filesystem img into a new directory, all but the
// entries of /many (which only cost time: the tests list /many with
// debugfs ls and cat a sample of it).
func rdump(t testing.TB, img string) string {
	t.Helper()
	out := tempDir(t)
	var src []string
	for _, line := range strings.Split(string(debugfs(t, img, "ls -p /")), "\n") {
		f := strings.Split(line, "/")
		if len(f) < 7 || f[1] == "0" || f[5] == "." || f[5] == ".." || f[5] == "many" {
			continue
		}
		src = append(src, "/"+f[5])
	}
	debugfs(t, img, "rdump "+strings.Join(src, " ")+" "+out)
	require.NoError(t, os.Mkdir(filepath.Join(out, "many"), 0o755))
	return out
}

// lsNames returns the names debugfs lists in dir, without . and ..
func lsNames(t testing.TB, img, dir string) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(string(debugfs(t, img, "ls -p "+dir)), "\n") {
		// /inode/mode/uid/gid/name/size/
		f := strings.Split(line, "/")
		// Entries of inode 0 are free space (or deleted files), not names.
		if len(f) < 7 || f[1] == "0" || f[5] == "." || f[5] == ".." {
			continue
		}
		names = append(names, f[5])
	}
	sort.Strings(names)
	return names
}

var (
	imapRe  = regexp.MustCompile(`located at block (\d+), offset 0x([0-9a-f]+)`)
	levelRe = regexp.MustCompile(`(?m)^\s*(\d+)/\s*(\d+)\s+\d+/\s*\d+\s+\d+\s+-\s+\d+\s+(\d+)`)
)

// inodeLoc returns the byte offset of path's inode (debugfs imap).
func inodeLoc(t testing.TB, img, path string, bs int) int64 {
	t.Helper()
	m := imapRe.FindSubmatch(debugfs(t, img, "imap "+path))
	if m == nil {
		t.Fatalf("debugfs imap %s: no location", path)
	}
	blk, _ := strconv.ParseInt(string(m[1]), 10, 64)
	off, _ := strconv.ParseInt(string(m[2]), 16, 64)
	return blk*int64(bs) + off
}

// dataBlocks returns the blocks debugfs lists for path (data blocks
// only, without extent tree or indirect blocks).
func dataBlocks(t testing.TB, img, path string) []int64 {
	t.Helper()
	var out []int64
	for _, f := range strings.Fields(string(debugfs(t, img, "blocks "+path))) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("debugfs blocks %s: %q", path, f)
		}
		out = append(out, n)
	}
	return out
}

// extentDepth returns the depth of path's extent tree and its first
// tree block (0 for depth 0), from debugfs ex.
func extentDepth(t testing.TB, img, path string) (depth int, treeBlock int64) {
	t.Helper()
	m := levelRe.FindSubmatch(debugfs(t, img, "ex "+path))
	if m == nil {
		return 0, 0
	}
	depth, _ = strconv.Atoi(string(m[2]))
	if depth > 0 {
		treeBlock, _ = strconv.ParseInt(string(m[3]), 10, 64)
	}
	return depth, treeBlock
}

// readRanges concatenates the bytes of ranges read from r.
func readRanges(t testing.TB, r io.ReaderAt, ranges []Range) []byte {
	t.Helper()
	out := []byte{}
	for _, rg := range ranges {
		buf := make([]byte, rg.Length)
		if !rg.Zero {
			if _, err := r.ReadAt(buf, rg.Offset); err != nil {
				t.Fatalf("reading range %+v: %v", rg, err)
			}
		}
		out = append(out, buf...)
	}
	return out
}

// openImage opens img with this package.
func openImage(t testing.TB, img string) (*FS, *os.File) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Open(f, st.Size())
	if err != nil {
		t.Fatalf("Open %s: %v", img, err)
	}
	return fs, f
}

// copyImage copies img to a new temporary file, sparsely: the images
// are mostly zeros.
func copyImage(t testing.TB, img string) string {
	t.Helper()
	src, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p := filepath.Join(tempDir(t), "img")
	dst, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	buf := make([]byte, 1<<20)
	zero := make([]byte, 4096)
	var off int64
	for {
		n, err := io.ReadFull(src, buf)
		for i := 0; i < n; i += len(zero) {
			chunk := buf[i:min(i+len(zero), n)]
			if !bytes.Equal(chunk, zero[:len(chunk)]) {
				if _, err := dst.WriteAt(chunk, off+int64(i)); err != nil {
					t.Fatal(err)
				}
			}
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := dst.Truncate(off); err != nil {
		t.Fatal(err)
	}
	return p
}

// applyPatches writes patches into the image file p.
func applyPatches(t testing.TB, p string, patches []Patch) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, pt := range patches {
		if _, err := f.WriteAt(pt.Data, pt.Offset); err != nil {
			t.Fatal(err)
		}
	}
}

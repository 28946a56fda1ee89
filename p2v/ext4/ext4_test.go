package ext4

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOracle compares every file, link and directory of each variant
// with what debugfs dumps (rdump), cats and lists.
func TestOracle(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			img := image(t, v)
			fsys, f := openImage(t, img)
			dump := rdump(t, img)

			seen := map[string]bool{}
			err := filepath.WalkDir(dump, func(hp string, d fs.DirEntry, err error) error {
				require.NoError(t, err)
				rel, _ := filepath.Rel(dump, hp)
				p := "/" + filepath.ToSlash(rel)
				if rel == "." {
					p = "/"
				}
				seen[p] = true
				switch {
				case d.Type()&fs.ModeSymlink != 0:
					want, err := os.Readlink(hp)
					require.NoError(t, err)
					got, err := fsys.Readlink(p)
					require.NoError(t, err, p)
					assert.Equal(t, want, got, p)
				case p == "/many":
					// Not dumped: compared with debugfs ls below.
				case d.IsDir():
					entries, err := os.ReadDir(hp)
					require.NoError(t, err)
					var want []string
					for _, e := range entries {
						want = append(want, e.Name())
					}
					got, err := fsys.ReadDir(p)
					require.NoError(t, err, p)
					assert.Equal(t, want, sortedNames(got), p)
				default:
					want, err := os.ReadFile(hp)
					require.NoError(t, err)
					want = debugfsInline(t, fsys, p, want)
					got, err := fsys.ReadFile(p)
					require.NoError(t, err, p)
					require.Equal(t, want, got, p)
					ranges, err := fsys.FileRanges(p)
					require.NoError(t, err, p)
					require.Equal(t, want, readRanges(t, f, ranges), p)
				}
				return nil
			})
			require.NoError(t, err)

			// Walking with ReadDir finds exactly what rdump wrote.
			found := map[string]bool{"/": true}
			var walk func(dir string)
			walk = func(dir string) {
				entries, err := fsys.ReadDir(dir)
				require.NoError(t, err, dir)
				for _, e := range entries {
					p := strings.TrimSuffix(dir, "/") + "/" + e.Name
					found[p] = true
					if e.Type == TypeDir {
						walk(p)
					}
				}
			}
			walk("/")
			for p := range found {
				if strings.HasPrefix(p, "/many/") {
					delete(found, p)
				}
			}
			assert.Equal(t, seen, found)

			// debugfs cat and ls against ReadFile and ReadDir.
			for _, p := range []string{"/etc/fstab", "/etc/multi", "/etc/big-text", "/big", "/fragged", "/sparse", "/empty",
				"/many/entry-0000-with-a-longer-name", "/many/entry-1234-with-a-longer-name", "/many/entry-1999-with-a-longer-name"} {
				got, err := fsys.ReadFile(p)
				require.NoError(t, err, p)
				require.Equal(t, debugfsInline(t, fsys, p, debugfs(t, img, "cat "+p)), got, p)
			}
			for _, d := range []string{"/", "/etc", "/many", "/frag", "/emptydir", "/lost+found"} {
				got, err := fsys.ReadDir(d)
				require.NoError(t, err, d)
				assert.Equal(t, lsNames(t, img, d), sortedNames(got), d)
			}
		})
	}
}

// debugfsInline undoes a debugfs 1.47 quirk: it dumps inline-data files
// shorter than 60 bytes padded with zeros to the 60 bytes of i_block.
func debugfsInline(t *testing.T, fsys *FS, p string, want []byte) []byte {
	t.Helper()
	in, err := fsys.LookupFollow(p)
	require.NoError(t, err, p)
	if in.Flags&flagInlineData != 0 && in.Size < 60 && len(want) == 60 {
		require.Equal(t, make([]byte, 60-in.Size), want[in.Size:], "debugfs output of %s past its size", p)
		return want[:in.Size]
	}
	return want
}

func sortedNames(entries []DirEntry) []string {
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	return names
}

// TestLayouts checks that the variants exercise what they are meant to:
// htree directories, deep extent trees, unwritten extents, holes, block
// maps with double indirect blocks and inline data.
func TestLayouts(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			img := image(t, v)
			fsys, _ := openImage(t, img)
			assert.Equal(t, v.csum, fsys.MetadataChecksums())
			assert.Equal(t, v.blockSize, fsys.BlockSize())

			many, err := fsys.Lookup("/many")
			require.NoError(t, err)
			assert.NotZero(t, many.Flags&flagIndex, "/many is not an htree directory")
			require.Contains(t, string(debugfs(t, img, "htree /many")), "Root node dump")

			fragged, err := fsys.Lookup("/fragged")
			require.NoError(t, err)
			if v.extents {
				depth, _ := extentDepth(t, img, "/fragged")
				assert.GreaterOrEqual(t, depth, 1, "extent tree depth of /fragged")
				if v.blockSize == 1024 {
					assert.GreaterOrEqual(t, depth, 2, "extent tree depth of /fragged")
				}
				assert.NotZero(t, fragged.Flags&flagExtents)

				// /sparse: data, unwritten extent inside the hole, data.
				ranges, err := fsys.FileRanges("/sparse")
				require.NoError(t, err)
				var zero int64
				for _, r := range ranges {
					if r.Zero {
						zero += r.Length
						assert.Equal(t, int64(-1), r.Offset)
					}
				}
				bs := int64(v.blockSize)
				assert.Equal(t, 200000/bs*bs-(5000+bs-1)/bs*bs, zero, "hole and unwritten bytes of /sparse: %+v", ranges)
				assert.Contains(t, string(debugfs(t, img, "ex /sparse")), "Uninit")
			} else {
				assert.Zero(t, fragged.Flags&flagExtents)
				big, err := fsys.Lookup("/big")
				require.NoError(t, err)
				// 600 KiB of 1 KiB blocks needs the double indirect block.
				if v.blockSize == 1024 {
					assert.NotZero(t, big.iblock()[13*4:14*4], "no double indirect block")
				}
			}
			fstabIno, err := fsys.Lookup("/etc/fstab")
			require.NoError(t, err)
			assert.Equal(t, v.inline, fstabIno.Flags&flagInlineData != 0, "inline data of /etc/fstab")
			ranges, err := fsys.FileRanges("/etc/fstab")
			require.NoError(t, err)
			assert.Len(t, ranges, map[bool]int{true: 2, false: 1}[v.inline], "%+v", ranges)
		})
	}
}

// TestLookup covers path resolution: symbolic links absolute and
// relative, in the middle and at the end, loops and dangling links.
func TestLookup(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			fsys, _ := openImage(t, image(t, v))
			want, err := fsys.Lookup("/etc/fstab")
			require.NoError(t, err)
			require.True(t, want.IsRegular())
			assert.Equal(t, int64(len(fstab)), want.Size)
			assert.Equal(t, fs.FileMode(0o644), want.FileMode())

			for _, p := range []string{"/etc/abs", "/etc/rel", "/etc/dotdot", "/etc/long", "/etclink/fstab",
				"/etclink/abs", "/chain", "//etc/./fstab", "/etc/../etc/fstab", "/etclink/../etc/fstab", "/../etc/fstab"} {
				got, err := fsys.LookupFollow(p)
				require.NoError(t, err, p)
				assert.Equal(t, want.Num, got.Num, p)
				data, err := fsys.ReadFile(p)
				require.NoError(t, err, p)
				assert.Equal(t, fstab, string(data), p)
			}
			link, err := fsys.Lookup("/etc/abs")
			require.NoError(t, err)
			assert.True(t, link.IsSymlink())
			assert.Equal(t, fs.ModeSymlink, link.FileMode().Type())
			target, err := fsys.Readlink("/etclink/long")
			require.NoError(t, err)
			assert.Equal(t, "/etc/"+strings.Repeat("./", 40)+"fstab", target)

			dir, err := fsys.LookupFollow("/etclink")
			require.NoError(t, err)
			assert.True(t, dir.IsDir())
			dir2, err := fsys.Lookup("/etclink/")
			require.NoError(t, err)
			assert.Equal(t, dir.Num, dir2.Num)
			root, err := fsys.Lookup("/")
			require.NoError(t, err)
			assert.Equal(t, uint32(2), root.Num)

			_, err = fsys.LookupFollow("/loop1")
			assert.ErrorIs(t, err, ErrLoop)
			_, err = fsys.Lookup("/loop1/x")
			assert.ErrorIs(t, err, ErrLoop)
			_, err = fsys.Lookup("/loop1")
			assert.NoError(t, err)
			_, err = fsys.LookupFollow("/dangling")
			assert.ErrorIs(t, err, ErrNotFound)
			_, err = fsys.Lookup("/dangling")
			assert.NoError(t, err)
			_, err = fsys.Lookup("/no/such")
			assert.ErrorIs(t, err, ErrNotFound)
			_, err = fsys.Lookup("etc/fstab")
			assert.ErrorIs(t, err, ErrNotFound)
			_, err = fsys.Lookup("/etc/fstab/x")
			assert.ErrorIs(t, err, ErrNotDir)
			_, err = fsys.ReadFile("/etc")
			assert.ErrorIs(t, err, ErrNotRegular)
			_, err = fsys.FileRanges("/etclink")
			assert.ErrorIs(t, err, ErrNotRegular)
			_, err = fsys.Readlink("/etc/fstab")
			assert.ErrorIs(t, err, ErrNotSymlink)
			_, err = fsys.ReadDir("/etc/fstab")
			assert.ErrorIs(t, err, ErrNotDir)
			_, err = fsys.RewriteFile("/etc", []byte("x"))
			assert.ErrorIs(t, err, ErrNotRegular)
		})
	}
}

// countingReader counts ReadAt calls.
type countingReader struct {
	r interface {
		ReadAt([]byte, int64) (int, error)
	}
	n int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.n++
	return c.r.ReadAt(p, off)
}

// TestFewReads checks that opening and reading a small file takes a
// handful of reads, and that metadata is cached.
func TestFewReads(t *testing.T) {
	v := variants[0]
	img := image(t, v)
	f, err := os.Open(img)
	require.NoError(t, err)
	defer f.Close()
	cr := &countingReader{r: f}
	fsys, err := Open(cr, imageSize)
	require.NoError(t, err)
	assert.LessOrEqual(t, cr.n, 2, "reads to open")
	_, err = fsys.ReadFile("/etc/fstab")
	require.NoError(t, err)
	first := cr.n
	assert.LessOrEqual(t, first, 10, "reads to open and read /etc/fstab")
	cr.n = 0
	_, err = fsys.ReadFile("/etc/hostname")
	require.NoError(t, err)
	// The root and /etc directory blocks and the file's data.
	assert.LessOrEqual(t, cr.n, 4, "reads for a second file in the same directory")
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(strings.NewReader(strings.Repeat("\x00", 4096)), 4096)
	assert.ErrorIs(t, err, ErrNotExt4)
	_, err = Open(strings.NewReader(""), 0)
	assert.ErrorIs(t, err, ErrNotExt4)

	v := variants[0]
	img := image(t, v)
	f, err := os.Open(img)
	require.NoError(t, err)
	defer f.Close()
	// A truncated image cannot hold the filesystem it describes.
	_, err = Open(f, imageSize/2)
	assert.ErrorIs(t, err, ErrCorrupt)
	var errs []error
	for _, e := range []error{ErrNotExt4, ErrCorrupt, ErrChecksum, ErrUnsupported, ErrNotFound, ErrNoRoom} {
		errs = append(errs, e)
	}
	for i, a := range errs {
		for j, b := range errs {
			assert.Equal(t, i == j, errors.Is(a, b))
		}
	}
}

package ntfs

import (
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testFile is a file put into a test volume.
type testFile struct {
	path string
	data []byte
}

func basicFiles() []testFile {
	return []testFile{
		{"/SYSTEM", randBytes(1, 300<<10)},
		{"/$Extend/SYSTEM", randBytes(2, 70<<10)},
		{"/small.txt", []byte("a small resident file\n")},
		{"/stride.bin", randBytes(3, 420)}, // resident, across a 512-byte stride end
		{"/empty", nil},
		{"/Ünïcödé Ä.txt", randBytes(4, 5000)},
		{"/Long File Name With Spaces.txt", randBytes(5, 4097)},
		{"/$Extend/nested.txt", []byte("in $Extend\n")},
	}
}

// checkFile compares a file with the oracle's view of it (want, from
// ntfscat) through ReadAll and the bytes at its ranges.
func checkFile(t *testing.T, v *Volume, img *os.File, tf testFile, want []byte) {
	t.Helper()
	if tf.data != nil {
		require.Equal(t, tf.data, want, "%s: ntfscat disagrees with what was put", tf.path)
	}

	for _, p := range []string{tf.path, flipCase(tf.path), strings.ReplaceAll(tf.path, "/", `\`)} {
		f, err := v.Lookup(p)
		require.NoError(t, err, p)
		assert.Equal(t, int64(len(want)), f.Size(), p)
		got, err := f.ReadAll()
		require.NoError(t, err, p)
		require.True(t, len(got) == len(want) && string(got) == string(want), "%s: ReadAll differs from ntfscat", p)
	}
	f, err := v.Lookup(tf.path)
	require.NoError(t, err)
	rs, err := f.Ranges()
	require.NoError(t, err, tf.path)
	var total int64
	for _, r := range rs {
		require.Positive(t, r.Length)
		total += r.Length
	}
	require.Equal(t, int64(len(want)), total, "%s: ranges cover %d bytes", tf.path, total)
	got := physicalBytes(t, v, img, f, rs)
	require.True(t, string(got) == string(want), "%s: bytes at Ranges differ from ntfscat", tf.path)

	// ReadAt at an odd offset.
	if len(want) > 10 {
		buf := make([]byte, len(want)-7)
		n, err := f.ReadAt(buf, 7)
		require.NoError(t, err)
		require.Equal(t, len(buf), n)
		require.Equal(t, want[7:], buf)
	}
}

func TestVolumes(t *testing.T) {
	requireTools(t, "ntfsls")
	for _, cluster := range []int{512, 4096, 65536} {
		t.Run(fmt.Sprintf("cluster%d", cluster), func(t *testing.T) {
			t.Parallel()
			imgPath := mkvol(t, 64<<20, cluster)
			files := basicFiles()
			putAll(t, imgPath, files, false)
			var paths []string
			for _, tf := range files {
				paths = append(paths, tf.path)
			}
			cat := catAll(t, imgPath, paths)
			v, img := openImg(t, imgPath)
			require.Equal(t, int64(cluster), v.ClusterSize())
			for _, tf := range files {
				checkFile(t, v, img, tf, cat[tf.path])
			}
			for _, dir := range []string{"/", "/$Extend"} {
				names, err := v.ReadDir(dir)
				require.NoError(t, err)
				require.Equal(t, sorted(ntfsls(t, imgPath, dir)), sorted(names), dir)
			}
			// Resident data: the small files are, and stride.bin crosses
			// an update-sequence slot.
			f, err := v.Lookup("/stride.bin")
			require.NoError(t, err)
			rs, err := f.Ranges()
			require.NoError(t, err)
			crosses := false
			for _, r := range rs {
				require.True(t, r.Resident)
				if r.Offset/512 != (r.End()-1)/512 || r.End()%512 == 0 || r.End()%512 > 510 {
					crosses = true
				}
			}
			require.True(t, crosses, "stride.bin at %v does not cross a stride end", rs)
			f, err = v.Lookup("/SYSTEM")
			require.NoError(t, err)
			rs, err = f.Ranges()
			require.NoError(t, err)
			require.False(t, rs[0].Resident)
			require.Zero(t, rs[0].Offset%int64(cluster))
		})
	}
}

func TestLookupErrors(t *testing.T) {
	requireTools(t)
	imgPath := mkvol(t, 8<<20, 4096)
	put(t, imgPath, "/file", []byte("x"))
	v, _ := openImg(t, imgPath)
	for _, p := range []string{"/nope", "/file/x", "/$Extend/nope", "/fil", "/filee", "nope/file"} {
		_, err := v.Lookup(p)
		require.ErrorIs(t, err, ErrNotFound, p)
	}
	_, err := v.ReadDir("/file")
	require.ErrorIs(t, err, ErrNotFound)
	for _, p := range []string{"", "/", `\`, "/./", "//"} {
		f, err := v.Lookup(p)
		require.NoError(t, err, p)
		require.True(t, f.IsDir())
		require.EqualValues(t, recRoot, f.Record())
		_, err = f.ReadAll()
		require.ErrorIs(t, err, ErrNotFound, "a directory has no data")
	}
	f, err := v.Lookup("/FILE")
	require.NoError(t, err)
	require.False(t, f.IsDir())
	_, err = f.ReadDir()
	require.ErrorIs(t, err, ErrNotFound)
}

// TestManyFiles checks a directory whose index needs INDX blocks, made by
// ntfscp (the fixture's Windows/System32/drivers has 500 entries).
func TestManyFiles(t *testing.T) {
	requireTools(t, "ntfsls")
	imgPath := mkvol(t, 16<<20, 4096)
	var names []string
	var files []testFile
	for i := 0; i < 120; i++ {
		name := fmt.Sprintf("File-%03d-%s.dat", i, strings.Repeat("x", i%7))
		names = append(names, name)
		files = append(files, testFile{"/$Extend/" + name, []byte(name)})
	}
	putAll(t, imgPath, files, false)
	v, _ := openImg(t, imgPath)
	got, err := v.ReadDir("/$Extend")
	require.NoError(t, err)
	// ntfsls lists the root node first, then the INDX blocks; ReadDir
	// walks the B-tree in order.
	require.Equal(t, sorted(ntfsls(t, imgPath, "/$Extend")), sorted(got))
	require.Len(t, got, 123)
	require.True(t, sort.SliceIsSorted(got, func(i, j int) bool {
		return strings.ToUpper(got[i]) < strings.ToUpper(got[j])
	}), "ReadDir is in collation order")

	d, err := v.Lookup("/$extend")
	require.NoError(t, err)
	ix, err := d.openIndex()
	require.NoError(t, err)
	require.NotNil(t, ix.alloc, "500 entries need $INDEX_ALLOCATION")
	require.Greater(t, ix.alloc.size, 2*ix.blockSize)

	for i, name := range names {
		p := "/$Extend/" + name
		if i%2 == 1 {
			p = strings.ToUpper(p)
		}
		f, err := v.Lookup(p)
		require.NoError(t, err, p)
		b, err := f.ReadAll()
		require.NoError(t, err)
		require.Equal(t, name, string(b))
	}
	_, err = v.Lookup("/$Extend/File-120.dat")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = v.Lookup("/$Extend/A")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = v.Lookup("/$Extend/zzz")
	require.ErrorIs(t, err, ErrNotFound)
}

// TestFragmented fills a volume, frees every other file (in disk order)
// and writes a file into the holes.
func TestFragmented(t *testing.T) {
	requireTools(t, "ntfsinfo", "ntfstruncate", "ntfsls")
	imgPath := mkvol(t, 8<<20, 4096)
	chunk := randBytes(7, 256<<10)
	var fill []testFile
	for i := 0; i < 40; i++ {
		fill = append(fill, testFile{fmt.Sprintf("/c%02d", i), chunk})
	}
	putAll(t, imgPath, fill, true) // the last ones fail: the volume is full
	type placed struct {
		name string
		lcn  int64
	}
	var paths []string
	for _, name := range ntfsls(t, imgPath, "/") {
		if strings.HasPrefix(name, "c") {
			paths = append(paths, "/"+name)
		}
	}
	var files []placed
	for p, runs := range runsAll(t, imgPath, paths) {
		if len(runs) > 0 {
			files = append(files, placed{p, runs[0][1]})
		}
	}
	require.Greater(t, len(files), 10)
	sort.Slice(files, func(i, j int) bool { return files[i].lcn < files[j].lcn })
	inodes := map[string]string{}
	for _, l := range strings.Split(string(oracle.Run(t, "ntfsls", "-i", imgPath)), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			inodes["/"+f[1]] = f[0]
		}
	}
	var lines []string
	for i := 1; i < len(files); i += 2 {
		lines = append(lines, "ntfstruncate "+shQuote(imgPath)+" "+inodes[files[i].name]+" 0 >/dev/null")
	}
	out, err := script(t, lines)
	require.NoError(t, err, "%s", out)
	big := randBytes(8, 1000000)
	// -m (fewest fragments): without it ntfscp fails to allocate in holes.
	oracle.Run(t, "ntfscp", "-m", imgPath, writeTemp(t, big), "/big")
	runs := dataRuns(t, imgPath, "/big")
	require.GreaterOrEqual(t, len(runs), 3, "not fragmented: %v", runs)

	v, img := openImg(t, imgPath)
	cat := catAll(t, imgPath, append(paths, "/big"))
	checkFile(t, v, img, testFile{"/big", big}, cat["/big"])
	f, err := v.Lookup("/big")
	require.NoError(t, err)
	rs, err := f.Ranges()
	require.NoError(t, err)
	// The ranges are ntfsinfo's runs, trimmed to the size.
	var want []Range
	left := int64(len(big))
	for _, r := range runs {
		n := min(r[2]*4096, left)
		want = append(want, Range{Offset: r[1] * 4096, Length: n})
		left -= n
	}
	require.Equal(t, want, rs)
	for _, p := range paths {
		checkFile(t, v, img, testFile{path: p}, cat[p])
	}

	// With the volume full, new MFT records land in the holes left: the
	// $MFT itself becomes fragmented.
	var tiny []testFile
	for i := 0; i < 80; i++ {
		tiny = append(tiny, testFile{fmt.Sprintf("/t%03d", i), []byte(fmt.Sprintf("tiny %d", i))})
	}
	putAll(t, imgPath, tiny, false)
	mftRuns := dataRuns(t, imgPath, "/$MFT")
	require.GreaterOrEqual(t, len(mftRuns), 2, "$MFT not fragmented: %v", mftRuns)
	v, _ = openImg(t, imgPath)
	require.Len(t, v.mft.runs, len(mftRuns))
	last := uint64(0)
	for i := 0; i < 80; i++ {
		f, err := v.Lookup(fmt.Sprintf("/T%03d", i))
		require.NoError(t, err)
		b, err := f.ReadAll()
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("tiny %d", i), string(b))
		last = max(last, f.Record())
	}
	// The last records are past the $MFT's first run.
	require.Greater(t, int64(last+1)*int64(v.recordSize), mftRuns[0][2]*4096)
	names, err := v.ReadDir("/")
	require.NoError(t, err)
	require.Equal(t, sorted(ntfsls(t, imgPath, "/")), sorted(names))
}

// TestAttributeList checks a file whose attributes spill into extension
// records, with its unnamed $DATA in one of them.
func TestAttributeList(t *testing.T) {
	requireTools(t, "ntfsinfo")
	imgPath := mkvol(t, 16<<20, 4096)
	put(t, imgPath, "/alist", nil)
	var lines []string
	for i := 0; i < 12; i++ {
		lines = append(lines, fmt.Sprintf("ntfscp -N stream%d %s %s /alist", i, shQuote(imgPath), shQuote(writeTemp(t, randBytes(int64(i), 300)))))
	}
	out, err := script(t, lines)
	require.NoError(t, err, "%s", out)
	data := randBytes(100, 100000)
	put(t, imgPath, "/alist", data)
	info := string(oracle.Run(t, "ntfsinfo", "-v", "-F", "/alist", imgPath))
	require.Contains(t, info, "$ATTRIBUTE_LIST")

	v, img := openImg(t, imgPath)
	checkFile(t, v, img, testFile{"/alist", data}, catAll(t, imgPath, []string{"/alist"})["/alist"])
	f, err := v.Lookup("/alist")
	require.NoError(t, err)
	s, err := f.data()
	require.NoError(t, err)
	t.Logf("unnamed $DATA of record %d is in record %d", f.Record(), s.record)
	names, err := v.ReadDir("/")
	require.NoError(t, err)
	require.Contains(t, names, "alist")
}

func writeTemp(t testing.TB, b []byte) string {
	t.Helper()
	p := path.Join(t.TempDir(), "tmp")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

// TestPatch patches a non-resident and a resident file through PatchAt
// and checks the result with ntfscat and ntfsfix.
func TestPatch(t *testing.T) {
	requireTools(t, "ntfsfix")
	imgPath := mkvol(t, 16<<20, 4096)
	system := randBytes(10, 100000)
	stride := randBytes(11, 420)
	putAll(t, imgPath, []testFile{{"/SYSTEM", system}, {"/stride.bin", stride}}, false)
	v, _ := openImg(t, imgPath)

	var all []Patch
	// Non-resident: across a cluster boundary.
	f, err := v.Lookup("/system")
	require.NoError(t, err)
	newSys := append([]byte(nil), system...)
	repl := []byte(strings.Repeat("PATCHED!", 40))
	copy(newSys[8000:], repl)
	ps, err := f.PatchAt(8000, repl)
	require.NoError(t, err)
	all = append(all, ps...)
	// The same through Ranges directly.
	rs, err := f.Ranges()
	require.NoError(t, err)
	require.Equal(t, rs[0].Offset+8000, ps[0].Offset)

	// Resident: the whole value, which crosses a stride end.
	g, err := v.Lookup("/STRIDE.BIN")
	require.NoError(t, err)
	newStride := randBytes(12, len(stride))
	ps, err = g.PatchAt(0, newStride)
	require.NoError(t, err)
	all = append(all, ps...)

	patched := applyPatches(t, imgPath, all)
	require.Equal(t, newSys, oracle.Run(t, "ntfscat", patched, "/SYSTEM"))
	require.Equal(t, newStride, oracle.Run(t, "ntfscat", patched, "/stride.bin"))
	oracle.Run(t, "ntfsfix", "-n", patched)

	// And this package agrees.
	pv, _ := openImg(t, patched)
	for name, want := range map[string][]byte{"/SYSTEM": newSys, "/stride.bin": newStride} {
		f, err := pv.Lookup(name)
		require.NoError(t, err)
		got, err := f.ReadAll()
		require.NoError(t, err)
		require.Equal(t, want, got, name)
	}

	_, err = g.PatchAt(400, make([]byte, 21))
	require.Error(t, err, "patch past the end")
	_, err = g.PatchAt(-1, make([]byte, 1))
	require.Error(t, err)
}

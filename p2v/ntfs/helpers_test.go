package ntfs

import (
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/stretchr/testify/require"
)

// requireTools skips the test unless the ntfs-3g tools it uses exist.
func requireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range append([]string{"mkntfs", "ntfscp", "ntfscat"}, tools...) {
		oracle.Require(t, tool)
	}
}

// mkvol formats a sparse file of size bytes with the given cluster size.
func mkvol(t testing.TB, size int64, cluster int) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "vol.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
	oracle.Run(t, "mkntfs", "-F", "-q", "-Q", "-s", "512", "-c", strconv.Itoa(cluster), img)
	return img
}

// shQuote quotes s for sh.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// script runs an sh script. Tests batch their many ntfs-3g tool calls into
// one script: each fork of a race-instrumented test binary is slow.
func script(t testing.TB, lines []string) ([]byte, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.sh")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o755))
	return oracle.Output("sh", path)
}

// putAll copies files into the volume with ntfscp, in order. With
// mayFail, ntfscp's failures (a full volume) are ignored.
func putAll(t testing.TB, img string, files []testFile, mayFail bool) {
	t.Helper()
	dir := t.TempDir()
	lines := []string{"set -e"}
	for i, f := range files {
		src := filepath.Join(dir, strconv.Itoa(i))
		require.NoError(t, os.WriteFile(src, f.data, 0o644))
		l := "ntfscp -f " + shQuote(img) + " " + shQuote(src) + " " + shQuote(f.path)
		if mayFail {
			l += " >/dev/null 2>&1 || true"
		}
		lines = append(lines, l)
	}
	out, err := script(t, lines)
	require.NoError(t, err, "%s", out)
}

// put copies data into the volume at path with ntfscp.
func put(t testing.TB, img, path string, data []byte) {
	t.Helper()
	putAll(t, img, []testFile{{path, data}}, false)
}

// catAll returns ntfscat's output for each path.
func catAll(t testing.TB, img string, paths []string) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	lines := []string{"set -e"}
	for i, p := range paths {
		lines = append(lines, "ntfscat "+shQuote(img)+" "+shQuote(p)+" > "+shQuote(filepath.Join(dir, strconv.Itoa(i))))
	}
	out, err := script(t, lines)
	require.NoError(t, err, "%s", out)
	res := map[string][]byte{}
	for i, p := range paths {
		b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(i)))
		require.NoError(t, err)
		res[p] = b
	}
	return res
}

// runsAll returns dataRuns for each path (nil where there is no run list).
func runsAll(t testing.TB, img string, paths []string) map[string][][3]int64 {
	t.Helper()
	dir := t.TempDir()
	var lines []string
	for i, p := range paths {
		lines = append(lines, "ntfsinfo -v -F "+shQuote(p)+" "+shQuote(img)+" > "+shQuote(filepath.Join(dir, strconv.Itoa(i)))+" 2>&1")
	}
	out, err := script(t, lines)
	require.NoError(t, err, "%s", out)
	res := map[string][][3]int64{}
	for i, p := range paths {
		b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(i)))
		require.NoError(t, err)
		res[p] = parseRuns(t, string(b))
	}
	return res
}

func randBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// openImg opens an image file as a Volume.
func openImg(t testing.TB, img string) (*Volume, *os.File) {
	t.Helper()
	f, err := os.Open(img)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	require.NoError(t, err)
	v, err := Open(f, st.Size())
	require.NoError(t, err)
	return v, f
}

// ntfsls lists a directory with ntfsls, without "." and "..".
func ntfsls(t testing.TB, img, dir string) []string {
	t.Helper()
	out := oracle.Run(t, "ntfsls", "-a", "-s", img, "-p", dir)
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && l != "." && l != ".." {
			names = append(names, l)
		}
	}
	return names
}

// dataRuns returns the $DATA run list ntfsinfo shows for path, as
// (vcn, lcn, length) triples.
func dataRuns(t testing.TB, img, path string) [][3]int64 {
	t.Helper()
	return parseRuns(t, string(oracle.Run(t, "ntfsinfo", "-v", "-F", path, img)))
}

// parseRuns parses the first $DATA run list of ntfsinfo -v output.
func parseRuns(t testing.TB, out string) [][3]int64 {
	t.Helper()
	i := strings.Index(out, "Dumping attribute $DATA")
	if i < 0 {
		return nil
	}
	out = out[i:]
	i = strings.Index(out, "Runlist:")
	if i < 0 {
		return nil
	}
	var runs [][3]int64
	for _, l := range strings.Split(out[i:], "\n")[1:] {
		f := strings.Fields(l)
		if len(f) != 3 || !strings.HasPrefix(f[0], "0x") {
			break
		}
		var r [3]int64
		for k := range f {
			n, err := strconv.ParseInt(strings.TrimPrefix(f[k], "0x"), 16, 64)
			require.NoError(t, err, l)
			r[k] = n
		}
		runs = append(runs, r)
	}
	return runs
}

// inode returns the MFT record number of a root directory entry.
func inode(t testing.TB, img, name string) string {
	t.Helper()
	out := oracle.Run(t, "ntfsls", "-i", "-a", "-s", img)
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[1] == name {
			return f[0]
		}
	}
	t.Fatalf("%s not in the root of %s", name, img)
	return ""
}

// physicalBytes reads the bytes at ranges from the image, replacing the
// update-sequence slots of resident ranges by the true bytes from the
// record's update sequence array.
func physicalBytes(t testing.TB, v *Volume, img *os.File, f *File, rs []Range) []byte {
	t.Helper()
	var out []byte
	for _, r := range rs {
		b := make([]byte, r.Length)
		_, err := img.ReadAt(b, r.Offset)
		require.NoError(t, err)
		out = append(out, b...)
	}
	if len(rs) == 0 || !rs[0].Resident {
		return out
	}
	// Resident: fix the slots up from the raw record.
	raw, err := v.readRecordRaw(f.num)
	require.NoError(t, err)
	usaOff, _, err := usaBounds(raw, "test")
	require.NoError(t, err)
	s, err := f.data()
	require.NoError(t, err)
	for i := range out {
		o := s.valueOff + i
		if o%512 >= 510 {
			out[i] = raw[usaOff+2*(o/512+1)+o%512-510]
		}
	}
	return out
}

// applyPatches writes patches into a copy of img and returns the copy.
func applyPatches(t testing.TB, img string, ps []Patch) string {
	t.Helper()
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	for _, p := range ps {
		copy(b[p.Offset:], p.Data)
	}
	out := filepath.Join(t.TempDir(), "patched.img")
	require.NoError(t, os.WriteFile(out, b, 0o644))
	return out
}

// flipCase swaps the case of ASCII and Latin-1 letters.
func flipCase(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case strings.ToUpper(string(r)) != string(r):
			b.WriteString(strings.ToUpper(string(r)))
		default:
			b.WriteString(strings.ToLower(string(r)))
		}
	}
	return b.String()
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

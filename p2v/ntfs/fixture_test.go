package ntfs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/stretchr/testify/require"
)

// fixtureContent returns the bytes testdata/mkfixture.sh writes to a file
// of that base name and size.
func fixtureContent(name string, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%s: StandbyKit NTFS fixture line %d\n", name, i)
	}
	return b.Bytes()[:n]
}

// fixture unpacks testdata/windows.img.gz and returns its path.
func fixture(t testing.TB) string {
	t.Helper()
	zf, err := os.Open(filepath.Join("testdata", "windows.img.gz"))
	require.NoError(t, err)
	defer zf.Close()
	zr, err := gzip.NewReader(zf)
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "windows.img")
	f, err := os.Create(out)
	require.NoError(t, err)
	_, err = io.Copy(f, zr)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return out
}

var fixtureFiles = map[string][]byte{
	"/Windows/System32/config/SYSTEM":          fixtureContent("SYSTEM", 100000),
	"/Windows/System32/config/SYSTEM.hardlink": fixtureContent("SYSTEM", 100000),
	"/Windows/System32/config/SOFTWARE":        fixtureContent("SOFTWARE", 600),
	"/Long File Name.txt":                      fixtureContent("Long File Name.txt", 5000),
	"/Dökumente/Ähre.txt":                      fixtureContent("Ähre.txt", 3000),
}

// TestFixture reads the Windows-like fixture without any external tool.
func TestFixture(t *testing.T) {
	v, img := openImg(t, fixture(t))
	for p, want := range fixtureFiles {
		for _, q := range []string{p, strings.ToUpper(p), strings.ToLower(p), strings.ReplaceAll(p, "/", `\`)} {
			f, err := v.Lookup(q)
			require.NoError(t, err, q)
			got, err := f.ReadAll()
			require.NoError(t, err, q)
			require.Equal(t, want, got, q)
		}
		f, err := v.Lookup(p)
		require.NoError(t, err)
		rs, err := f.Ranges()
		require.NoError(t, err)
		require.Equal(t, want, physicalBytes(t, v, img, f, rs), p)
	}
	// Hard links share a record.
	a, err := v.Lookup("/Windows/System32/config/SYSTEM")
	require.NoError(t, err)
	b, err := v.Lookup("/windows/system32/config/system.HARDLINK")
	require.NoError(t, err)
	require.Equal(t, a.Record(), b.Record())

	// DOS names: looked up, not listed.
	dos, err := v.Lookup("/longfi~1.txt")
	require.NoError(t, err)
	long, err := v.Lookup("/Long File Name.txt")
	require.NoError(t, err)
	require.Equal(t, long.Record(), dos.Record())
	root, err := v.ReadDir("/")
	require.NoError(t, err)
	require.Contains(t, root, "Long File Name.txt")
	require.NotContains(t, root, "LONGFI~1.TXT")

	drivers, err := v.ReadDir("/Windows/System32/drivers")
	require.NoError(t, err)
	require.Len(t, drivers, 500)
	for i, name := range drivers {
		require.Equal(t, fmt.Sprintf("Drv%03d.sys", i), name)
	}
	f, err := v.Lookup(`\WINDOWS\System32\DRIVERS\drv499.SYS`)
	require.NoError(t, err)
	got, err := f.ReadAll()
	require.NoError(t, err)
	require.Equal(t, fixtureContent("Drv499.sys", 599), got)

	// Sparse: readable, no ranges.
	f, err = v.Lookup("/sparse.bin")
	require.NoError(t, err)
	got, err = f.ReadAll()
	require.NoError(t, err)
	want := make([]byte, 2000003)
	copy(want[500000:], fixtureContent("sparse", 5000))
	copy(want[2000000:], "end")
	require.Equal(t, want, got)
	_, err = f.Ranges()
	require.ErrorIs(t, err, ErrUnsupported)

	// Compressed: refused.
	f, err = v.Lookup("/Compressed/c.txt")
	require.NoError(t, err)
	require.EqualValues(t, 60000, f.Size())
	_, err = f.ReadAll()
	require.ErrorIs(t, err, ErrUnsupported)
	_, err = f.Ranges()
	require.ErrorIs(t, err, ErrUnsupported)
	_, err = f.PatchAt(0, []byte("x"))
	require.ErrorIs(t, err, ErrUnsupported)
}

// TestFixtureOracle compares the whole fixture tree with ntfsls and
// ntfscat, and patches it.
func TestFixtureOracle(t *testing.T) {
	requireTools(t, "ntfsls", "ntfsfix")
	imgPath := fixture(t)
	v, img := openImg(t, imgPath)
	var files []string
	var walk func(dir string)
	walk = func(dir string) {
		names, err := v.ReadDir(dir)
		require.NoError(t, err, dir)
		require.Equal(t, sorted(ntfsls(t, imgPath, dir)), sorted(names), dir)
		for _, name := range names {
			p := path.Join(dir, name)
			f, err := v.Lookup(p)
			require.NoError(t, err, p)
			switch {
			case f.IsDir() && !strings.HasPrefix(name, "$"):
				walk(p)
			case !f.IsDir() && !strings.HasPrefix(name, "$") && p != "/Compressed/c.txt":
				files = append(files, p)
			}
		}
	}
	walk("/")
	require.Greater(t, len(files), 500)
	cat := catAll(t, imgPath, files)
	for _, p := range files {
		f, err := v.Lookup(p)
		require.NoError(t, err, p)
		got, err := f.ReadAll()
		require.NoError(t, err, p)
		require.Equal(t, cat[p], got, p)
		if p != "/sparse.bin" {
			rs, err := f.Ranges()
			require.NoError(t, err, p)
			require.Equal(t, cat[p], physicalBytes(t, v, img, f, rs), p)
		}
	}

	// Patch SYSTEM (non-resident) and SOFTWARE (resident, across a stride).
	sys, err := v.Lookup("/Windows/System32/config/SYSTEM")
	require.NoError(t, err)
	soft, err := v.Lookup("/Windows/System32/config/SOFTWARE")
	require.NoError(t, err)
	p1, err := sys.PatchAt(4090, []byte("patched across a cluster end"))
	require.NoError(t, err)
	require.Len(t, p1, 1, "SYSTEM is contiguous")
	newSoft := bytes.Repeat([]byte("0123456789"), 60)
	p2, err := soft.PatchAt(0, newSoft)
	require.NoError(t, err)
	patched := applyPatches(t, imgPath, append(p1, p2...))
	wantSys := fixtureContent("SYSTEM", 100000)
	copy(wantSys[4090:], "patched across a cluster end")
	require.Equal(t, wantSys, oracle.Run(t, "ntfscat", patched, "/Windows/System32/config/SYSTEM"))
	require.Equal(t, newSoft, oracle.Run(t, "ntfscat", patched, "/Windows/System32/config/SOFTWARE"))
	out, err := exec.Command("ntfsfix", "-n", patched).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "processed successfully")
}

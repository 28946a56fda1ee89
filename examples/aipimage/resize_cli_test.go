package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// resizeBinary builds the aipimage command once per test.
func resizeBinary(t *testing.T) func(args ...string) (string, error) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "aipimage")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String() + stderr.String(), err
	}
}

func writeRaw(t *testing.T, path string, size int64, r *rand.Rand, regions ...int64) []byte {
	t.Helper()
	b := make([]byte, size)
	for _, off := range regions {
		for i := off; i < min(off+200<<10, size); i++ {
			b[i] = byte(r.Uint32())
		}
	}
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return b
}

func newestFile(t *testing.T, out string) string {
	t.Helper()
	return strings.TrimSuffix(strings.Fields(out)[1], ":")
}

// TestCLIResize: a disk that grew or shrank since the parent point is
// refused (exit status 1, nothing written) until --resized says so; then
// every point extracts as it was, at its own size. Before, the grown disk
// was written as "CHANGED 0 B" without its new part, and the shrunk one
// failed with "unexpected EOF".
func TestCLIResize(t *testing.T) {
	aip := resizeBinary(t)
	work, set := t.TempDir(), t.TempDir()
	r := rand.New(rand.NewPCG(40, 41))
	raw := func(name string) string { return filepath.Join(work, name) }
	const mib = 1 << 20
	want := [][]byte{writeRaw(t, raw("p0.raw"), 8*mib, r, 0, 3*mib, 8*mib-100<<10)}
	out, err := aip("create", "--out", set, "--host", "srv", raw("p0.raw"))
	require.NoError(t, err, out)
	parent := newestFile(t, out)

	grown := writeRaw(t, raw("p1.raw"), 10*mib, r, 9*mib)
	copy(grown, want[0])
	require.NoError(t, os.WriteFile(raw("p1.raw"), grown, 0o644))
	shrunk := bytes.Clone(grown[:6*mib])
	copy(shrunk[5*mib:], "changed after the shrink")
	require.NoError(t, os.WriteFile(raw("p2.raw"), shrunk, 0o644))

	for _, step := range []struct {
		file    string
		content []byte
	}{{"p1.raw", grown}, {"p2.raw", shrunk}} {
		before, _ := filepath.Glob(filepath.Join(set, "*"))
		out, err = aip("create", "--out", set, "--parent", parent, raw(step.file))
		require.Error(t, err, "%s: %s", step.file, out)
		require.Contains(t, out, "disk size differs from the parent point's")
		require.Contains(t, out, "--resized")
		after, _ := filepath.Glob(filepath.Join(set, "*"))
		require.Equal(t, before, after, "a refused create writes nothing")

		out, err = aip("create", "--out", set, "--parent", parent, "--resized", raw(step.file))
		require.NoError(t, err, out)
		parent = newestFile(t, out)
		want = append(want, step.content)
	}
	out, err = aip("info", set)
	require.NoError(t, err, out)
	require.Contains(t, out, "disk 0 resized from 8.0 MiB to 10.0 MiB")
	require.Contains(t, out, "disk 0 resized from 10.0 MiB to 6.0 MiB")
	out, err = aip("verify", set)
	require.NoError(t, err, out)
	for k, w := range want {
		dst := raw("x.raw")
		out, err = aip("extract", "--point", string(rune('0'+k)), "--disk", "0", "--out", dst, set)
		require.NoError(t, err, out)
		got, err := os.ReadFile(dst)
		require.NoError(t, err)
		require.Equal(t, len(w), len(got), "point %d size", k)
		require.True(t, bytes.Equal(w, got), "point %d differs", k)
		require.NoError(t, os.Remove(dst))
	}
}

// TestCLINewFullImage: a full image written into a folder that holds a set
// starts a new chain of it; info, verify and extract keep working (before:
// "second full image"), and another machine's full image is refused.
func TestCLINewFullImage(t *testing.T) {
	aip := resizeBinary(t)
	work, set := t.TempDir(), t.TempDir()
	r := rand.New(rand.NewPCG(42, 43))
	raw := filepath.Join(work, "d.raw")
	var want [][]byte
	for k := range 6 {
		b := writeRaw(t, raw, 4<<20, r, int64(k)<<19)
		args := []string{"create", "--out", set}
		switch k {
		case 0:
			args = append(args, "--host", "srv", "--firmware", "efi")
		case 3: // the weekly full: no --parent
		default:
			args = append(args, "--parent", newestImage(t, set))
		}
		out, err := aip(append(args, raw)...)
		require.NoError(t, err, out)
		require.Contains(t, out, "point "+string(rune('0'+k))+" of set")
		want = append(want, b)
	}
	out, err := aip("info", set)
	require.NoError(t, err, out)
	require.Contains(t, out, "2 chain(s)")
	require.Contains(t, out, "firmware efi", "the new chain keeps the machine")
	require.Equal(t, 1, strings.Count(out, "new full image: a new chain starts"), out)
	out, err = aip("verify", set)
	require.NoError(t, err, out)
	require.Contains(t, out, "ok: 6 points verified")
	for k, w := range want {
		dst := filepath.Join(work, "x.raw")
		out, err = aip("extract", "--point", string(rune('0'+k)), "--out", dst, set)
		require.NoError(t, err, out)
		got, err := os.ReadFile(dst)
		require.NoError(t, err)
		require.True(t, bytes.Equal(w, got), "point %d differs", k)
	}
	out, err = aip("create", "--out", set, "--host", "other", raw)
	require.Error(t, err)
	require.Contains(t, out, `holds the image set of host "srv"`)
}

// newestImage is the last image file of a set in name order, which is
// sequence order.
func newestImage(t *testing.T, set string) string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(set, "*.skimg"))
	require.NoError(t, err)
	require.NotEmpty(t, names)
	return names[len(names)-1]
}

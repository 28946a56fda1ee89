package ntfs

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
)

// windowsMadeVolume writes the NTFS partition of a disk image that
// Windows 10 formatted and wrote (testdata/windows-made, see its README)
// to a sparse file, and returns its path.
func windowsMadeVolume(t *testing.T, name string) string {
	t.Helper()
	oracle.Require(t, "xz")
	cmd := exec.Command("xz", "-dc", filepath.Join("testdata", "windows-made", name+".raw.xz"))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Wait()
	mbr := make([]byte, 512)
	_, err = io.ReadFull(out, mbr)
	require.NoError(t, err)
	start := int64(binary.LittleEndian.Uint32(mbr[446+8:])) * 512
	size := int64(binary.LittleEndian.Uint32(mbr[446+12:])) * 512
	_, err = io.CopyN(io.Discard, out, start-512)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), name+".vol")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Truncate(size))
	buf := make([]byte, 64<<10)
	for off := int64(0); off < size; {
		n, err := io.ReadFull(out, buf[:min(int64(len(buf)), size-off)])
		require.NoError(t, err)
		if !allByte(buf[:n], 0) {
			_, err = f.WriteAt(buf[:n], off)
			require.NoError(t, err)
		}
		off += int64(n)
	}
	_, err = io.Copy(io.Discard, out)
	require.NoError(t, err)
	return path
}

// walkOracle lists every file and directory under dir with ntfsls, as
// paths, skipping the metafiles of the root.
func walkOracle(t *testing.T, img, dir string, out map[string]bool) {
	for _, name := range strings.Split(string(oracle.Run(t, "ntfsls", "-a", "-s", "-F", img, "-p", dir)), "\n") {
		isDir := strings.HasSuffix(name, "/")
		name = strings.TrimSuffix(name, "/")
		if name == "" || name == "." || name == ".." || (dir == "/" && strings.HasPrefix(name, "$")) {
			continue
		}
		p := strings.TrimSuffix(dir, "/") + "/" + name
		out[p] = true
		if isDir {
			walkOracle(t, img, p, out)
		}
	}
}

// walkOurs lists the same with ReadDir.
func walkOurs(t *testing.T, v *Volume, dir string, out map[string]*File) {
	names, err := v.ReadDir(dir)
	require.NoError(t, err, dir)
	for _, name := range names {
		if dir == "/" && strings.HasPrefix(name, "$") {
			continue
		}
		p := strings.TrimSuffix(dir, "/") + "/" + name
		f, err := v.Lookup(p)
		require.NoError(t, err, p)
		out[p] = f
		if f.IsDir() {
			walkOurs(t, v, p, out)
		}
	}
}

// TestWindowsMadeVolumes reads volumes that Windows 10 formatted and
// wrote, then holding a registry hive copied in by ntfscp: the tree, the
// contents and the physical ranges must be what the ntfs-3g tools see.
// ntfs-2m has 2 MiB clusters (Windows 10 1709 and later); on ntfs-ramslack
// Windows turned compression on, so its files are compressed.
func TestWindowsMadeVolumes(t *testing.T) {
	requireTools(t, "ntfsls", "ntfsinfo")
	hive := randBytes(17, 300<<10)
	copy(hive, "regf")
	for _, tc := range []struct {
		image      string
		cluster    int64
		compressed bool
	}{
		{"ntfs-lastaccess", 4096, false},
		{"ntfs-2m", 2 << 20, false},
		{"ntfs-ramslack", 4096, true},
	} {
		t.Run(tc.image, func(t *testing.T) {
			img := windowsMadeVolume(t, tc.image)
			st, err := func() (State, error) {
				v, f := openImg(t, img)
				defer f.Close()
				return v.State()
			}()
			require.NoError(t, err)
			require.Equal(t, State{}, st, "Windows shut the volume down cleanly")
			put(t, img, "/SYSTEM", hive)

			v, f := openImg(t, img)
			defer f.Close()
			require.Equal(t, tc.cluster, v.ClusterSize())
			want := map[string]bool{}
			walkOracle(t, img, "/", want)
			got := map[string]*File{}
			walkOurs(t, v, "/", got)
			var wantPaths, gotPaths []string
			for p := range want {
				wantPaths = append(wantPaths, p)
			}
			for p := range got {
				gotPaths = append(gotPaths, p)
			}
			sort.Strings(wantPaths)
			sort.Strings(gotPaths)
			require.Equal(t, wantPaths, gotPaths)

			for p, file := range got {
				if file.IsDir() {
					continue
				}
				info := string(oracle.Run(t, "ntfsinfo", "-v", "-F", p, img))
				data, err := file.ReadAll()
				if tc.compressed && compressedData(info) {
					require.ErrorIs(t, err, ErrUnsupported, p)
					_, err = file.Ranges()
					require.ErrorIs(t, err, ErrUnsupported, p)
					continue
				}
				require.NoError(t, err, p)
				require.Equal(t, oracle.Run(t, "ntfscat", img, p), data, p)
				rs, err := file.Ranges()
				require.NoError(t, err, p)
				require.Equal(t, data, physicalBytes(t, v, f, file, rs), p)
				if runs := parseRuns(t, info); runs != nil {
					var fromRuns []Range
					for _, r := range runs {
						fromRuns = append(fromRuns, Range{Offset: r[1] * tc.cluster, Length: r[2] * tc.cluster})
					}
					require.Equal(t, joined(fromRuns, file.Size()), joined(rs, file.Size()), p)
				}
			}
			sys := got["/SYSTEM"]
			require.NotNil(t, sys)
			if tc.compressed {
				// ntfscp wrote the hive compressed, as the root asks: it
				// cannot be patched in place.
				_, err := sys.PatchAt(4096, []byte{1})
				require.True(t, errors.Is(err, ErrUnsupported), "%v", err)
			}
		})
	}
}

// compressedData reports whether ntfsinfo shows a non-resident $DATA
// attribute with the compressed flag (Windows flags resident data too,
// but it is stored as it is).
func compressedData(info string) bool {
	_, data, ok := strings.Cut(info, "Dumping attribute $DATA")
	if !ok {
		return false
	}
	data, _, _ = strings.Cut(data, "Dumping attribute")
	return regexp.MustCompile(`Resident:\s+No`).MatchString(data) && regexp.MustCompile(`Attribute flags:\s+0x0001`).MatchString(data)
}

// joined merges adjacent ranges and cuts them to n bytes, so that run
// lists split differently compare equal.
func joined(rs []Range, n int64) []Range {
	var out []Range
	for _, r := range rs {
		if k := len(out); k > 0 && out[k-1].End() == r.Offset {
			out[k-1].Length += r.Length
		} else {
			out = append(out, Range{Offset: r.Offset, Length: r.Length})
		}
	}
	var total int64
	for i := range out {
		if total+out[i].Length >= n {
			out[i].Length = n - total
			return out[:i+1]
		}
		total += out[i].Length
	}
	return out
}

// TestVolumeState: a journal whose restart area lacks its clean flag has
// operations pending (ntfs-3g then refuses to mount the volume
// read-write, "unclean file system", checked by hand); ntfsfix empties
// the journal and sets the dirty flag, as ntfsinfo shows.
func TestVolumeState(t *testing.T) {
	requireTools(t, "ntfsfix", "ntfsinfo")
	img := windowsMadeVolume(t, "ntfs-lastaccess")
	state := func() State {
		v, f := openImg(t, img)
		defer f.Close()
		s, err := v.State()
		require.NoError(t, err)
		return s
	}
	require.Equal(t, State{}, state())

	// Clear the clean flag of both restart areas.
	v, f := openImg(t, img)
	logf, err := v.Lookup("/$LogFile")
	require.NoError(t, err)
	rs, err := logf.Ranges()
	require.NoError(t, err)
	f.Close()
	raw, err := os.ReadFile(img)
	require.NoError(t, err)
	for _, page := range []int64{0, 4096} {
		o := rs[0].Offset + page
		ra := int64(binary.LittleEndian.Uint16(raw[o+0x18:]))
		fl := binary.LittleEndian.Uint16(raw[o+ra+14:])
		require.NotZero(t, fl&logVolumeIsClean)
		binary.LittleEndian.PutUint16(raw[o+ra+14:], fl&^logVolumeIsClean)
	}
	require.NoError(t, os.WriteFile(img, raw, 0o644))
	require.Equal(t, State{LogPending: true}, state())
	// ntfsfix empties the journal and marks the volume for a check at
	// Windows' next boot, which ntfsinfo shows as the dirty flag.
	oracle.Run(t, "ntfsfix", img)
	require.Regexp(t, `Volume Flags: 0x\w+ DIRTY`, string(oracle.Run(t, "ntfsinfo", "-f", "-m", img)))
	require.Equal(t, State{Dirty: true}, state())
}

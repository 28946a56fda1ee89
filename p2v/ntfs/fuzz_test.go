package ntfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/standbykit/standbykit/internal/fuzzimage"
	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/stretchr/testify/require"
)

// The fuzz input is a sparse volume image (internal/fuzzimage), so that
// seeds stay small while holding every structure the package reads (a
// whole mkntfs volume is megabytes, mostly zeros).

const fuzzMaxVolume = 64 << 20

var fuzzPaths = []string{"/SYSTEM", "/small.txt", "/$Extend/SYSTEM", "/$extend/f05", "/alist", "/nope", "/$UpCase"}

// exercise runs the read paths of the package over a volume; it must
// never panic, whatever the volume holds.
func exercise(v *Volume) {
	// $UpCase is usually absent from a sparse seed: fall back to an
	// ASCII table so that index lookups still run.
	up, err := v.loadUpcase()
	if err != nil {
		up = make([]uint16, upcaseEntries)
		for i := range up {
			up[i] = uint16(i)
			if i >= 'a' && i <= 'z' {
				up[i] -= 'a' - 'A'
			}
		}
	}
	v.upcaseOnce.Do(func() { v.upcase = up })
	readFile := func(f *File) {
		if n := f.Size(); n <= 64<<10 {
			_, _ = f.ReadAll()
		} else {
			var buf [4096]byte
			_, _ = f.ReadAt(buf[:], 0)
			_, _ = f.ReadAt(buf[:], n-int64(len(buf)))
		}
		_, _ = f.Ranges()
		_, _ = f.PatchAt(0, []byte{1, 2, 3})
		if f.IsDir() {
			_, _ = f.ReadDir()
		}
	}
	for _, p := range fuzzPaths {
		if f, err := v.Lookup(p); err == nil {
			readFile(f)
		}
	}
	_, _ = v.ReadDir("/")
	n := min(v.recordCount(), 96)
	for i := uint64(0); i < n; i++ {
		if f, err := v.loadFile(i, strconv.FormatUint(i, 10)); err == nil {
			readFile(f)
		}
	}
}

func FuzzOpen(f *testing.F) {
	f.Add([]byte{})
	f.Add(fuzzimage.Encode(1<<20, []fuzzimage.Chunk{{Off: 3, Data: []byte("NTFS    ")}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		img := fuzzimage.Decode(data, fuzzMaxVolume)
		v, err := Open(img, img.Size())
		if err != nil {
			return
		}
		exercise(v)
	})
}

// seedChunks extracts from a real volume the structures FuzzOpen reads:
// the boot sector, the in-use MFT records, index blocks and small files'
// data.
func seedChunks(t *testing.T, imgPath string) (int64, []fuzzimage.Chunk) {
	img, err := os.ReadFile(imgPath)
	require.NoError(t, err)
	v, err := openBytes(img)
	require.NoError(t, err)
	var out []fuzzimage.Chunk
	add := func(rs []Range) {
		for _, r := range rs {
			out = append(out, fuzzimage.NonZero(r.Offset, img[r.Offset:r.End()])...)
		}
	}
	add([]Range{{Offset: 0, Length: 512}})
	for i := uint64(0); i < v.recordCount(); i++ {
		raw, err := v.readRecordRaw(i)
		require.NoError(t, err)
		if string(raw[:4]) != "FILE" || binary.LittleEndian.Uint16(raw[0x16:])&recInUse == 0 {
			continue
		}
		rs, err := v.recordRanges(i, 0, int64(v.recordSize))
		require.NoError(t, err)
		add(rs)
		f, err := v.loadFile(i, "")
		if err != nil {
			continue // an extension record
		}
		if ix, err := f.openIndex(); err == nil && ix.alloc != nil {
			rs, err := ix.alloc.physical(0, ix.alloc.size)
			require.NoError(t, err)
			add(rs)
		}
		if i == recUpCase {
			s, err := f.data()
			require.NoError(t, err)
			rs, err := s.physical(0, 256) // ASCII is enough
			require.NoError(t, err)
			add(rs)
			continue
		}
		if f.Size() <= 16<<10 {
			if rs, err := f.Ranges(); err == nil && len(rs) > 0 && !rs[0].Resident {
				add(rs)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Off < out[j].Off })
	return int64(len(img)), out
}

// TestWriteFuzzSeeds writes testdata/fuzz/FuzzOpen from fresh mkntfs
// volumes; run with STANDBYKIT_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("STANDBYKIT_WRITE_SEEDS") != "1" {
		t.Skip("set STANDBYKIT_WRITE_SEEDS=1 to rewrite the FuzzOpen seeds")
	}
	requireTools(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, cluster := range []int{512, 4096, 0} {
		if cluster == 0 {
			// A $MFT with an attribute list.
			imgPath, _, _ := mftListImage(t, 20)
			size, chunks := seedChunks(t, imgPath)
			writeSeed(t, filepath.Join(dir, "mft-attribute-list"), fuzzimage.Encode(size, chunks))
			continue
		}
		imgPath := mkvol(t, 4<<20, cluster)
		files := []testFile{
			{"/SYSTEM", randBytes(1, 3000)},
			{"/small.txt", []byte("small\n")},
			{"/$Extend/SYSTEM", randBytes(2, 420)},
		}
		for i := 0; i < 12; i++ {
			files = append(files, testFile{fmt.Sprintf("/$Extend/f%02d", i), []byte{byte(i)}})
		}
		putAll(t, imgPath, files, false)
		if cluster == 512 {
			put(t, imgPath, "/alist", nil)
			for i := 0; i < 8; i++ {
				oracle.Run(t, "ntfscp", "-N", fmt.Sprintf("s%d", i), imgPath, writeTemp(t, randBytes(int64(i), 300)), "/alist")
			}
			put(t, imgPath, "/alist", randBytes(3, 2000))
		}
		size, chunks := seedChunks(t, imgPath)
		data := fuzzimage.Encode(size, chunks)

		// The seed must still work through the fuzz harness.
		img := fuzzimage.Decode(data, fuzzMaxVolume)
		v, err := Open(img, img.Size())
		require.NoError(t, err)
		exercise(v)
		f, err := v.Lookup("/$Extend/F05")
		require.NoError(t, err)
		b, err := f.ReadAll()
		require.NoError(t, err)
		require.Equal(t, []byte{5}, b)
		f, err = v.Lookup("/SYSTEM")
		require.NoError(t, err)
		b, err = f.ReadAll()
		require.NoError(t, err)
		require.Equal(t, randBytes(1, 3000), b)

		writeSeed(t, filepath.Join(dir, fmt.Sprintf("mkntfs-c%d", cluster)), data)
	}
}

// writeSeed writes data as a Go fuzz corpus file.
func writeSeed(t *testing.T, name string, data []byte) {
	var buf bytes.Buffer
	buf.WriteString("go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n")
	require.LessOrEqual(t, buf.Len(), 300<<10, "seed too large")
	require.NoError(t, os.WriteFile(name, buf.Bytes(), 0o644))
	t.Logf("%s: %d bytes of input, %d in the file", name, len(data), buf.Len())
}

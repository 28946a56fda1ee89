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

	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/stretchr/testify/require"
)

// The fuzz input is a sparse volume image, so that seeds stay small while
// holding every structure the package reads (a whole mkntfs volume is
// megabytes, mostly zeros):
//
//	uint32 LE  volume size in 4 KiB units (capped at 64 MiB)
//	repeated:  uint32 LE offset, uint16 LE length, length bytes
//
// Chunks are laid over a zero volume in order; a truncated chunk is cut.

const fuzzMaxVolume = 64 << 20

type chunk struct {
	off  int64
	data []byte
}

// sparseImage is an io.ReaderAt over chunks laid on zeros.
type sparseImage struct {
	size   int64
	chunks []chunk
}

func decodeSparse(b []byte) *sparseImage {
	if len(b) < 4 {
		return &sparseImage{}
	}
	s := &sparseImage{size: int64(binary.LittleEndian.Uint32(b)) * 4096}
	s.size = min(s.size, fuzzMaxVolume)
	b = b[4:]
	for len(b) >= 6 {
		off := int64(binary.LittleEndian.Uint32(b))
		n := int(binary.LittleEndian.Uint16(b[4:]))
		b = b[6:]
		n = min(n, len(b))
		s.chunks = append(s.chunks, chunk{off, b[:n]})
		b = b[n:]
	}
	return s
}

func (s *sparseImage) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	end := off + int64(len(p))
	for _, c := range s.chunks {
		cEnd := c.off + int64(len(c.data))
		if c.off >= end || cEnd <= off {
			continue
		}
		from, to := max(c.off, off), min(cEnd, end)
		copy(p[from-off:to-off], c.data[from-c.off:to-c.off])
	}
	return len(p), nil
}

// encodeSparse writes chunks in the fuzz input format.
func encodeSparse(size int64, chunks []chunk) []byte {
	out := binary.LittleEndian.AppendUint32(nil, uint32(size/4096))
	for _, c := range chunks {
		for len(c.data) > 0 {
			n := min(len(c.data), 0xFFFF)
			out = binary.LittleEndian.AppendUint32(out, uint32(c.off))
			out = binary.LittleEndian.AppendUint16(out, uint16(n))
			out = append(out, c.data[:n]...)
			c.data, c.off = c.data[n:], c.off+int64(n)
		}
	}
	return out
}

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
	f.Add(encodeSparse(1<<20, []chunk{{3, []byte("NTFS    ")}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		img := decodeSparse(data)
		v, err := Open(img, img.size)
		if err != nil {
			return
		}
		exercise(v)
	})
}

// nonZeroChunks returns the non-zero stretches of b (at volume offset off),
// merging stretches separated by fewer than 16 zeros.
func nonZeroChunks(off int64, b []byte) []chunk {
	var out []chunk
	for i := 0; i < len(b); {
		if b[i] == 0 {
			i++
			continue
		}
		j, zeros := i, 0
		for k := i; k < len(b) && zeros < 16; k++ {
			if b[k] == 0 {
				zeros++
			} else {
				zeros, j = 0, k+1
			}
		}
		out = append(out, chunk{off + int64(i), b[i:j]})
		i = j
	}
	return out
}

// seedChunks extracts from a real volume the structures FuzzOpen reads:
// the boot sector, the in-use MFT records, index blocks and small files'
// data.
func seedChunks(t *testing.T, imgPath string) (int64, []chunk) {
	img, err := os.ReadFile(imgPath)
	require.NoError(t, err)
	v, err := openBytes(img)
	require.NoError(t, err)
	var out []chunk
	add := func(rs []Range) {
		for _, r := range rs {
			out = append(out, nonZeroChunks(r.Offset, img[r.Offset:r.End()])...)
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
	sort.SliceStable(out, func(i, j int) bool { return out[i].off < out[j].off })
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
			writeSeed(t, filepath.Join(dir, "mft-attribute-list"), encodeSparse(size, chunks))
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
		data := encodeSparse(size, chunks)

		// The seed must still work through the fuzz harness.
		img := decodeSparse(data)
		v, err := Open(img, img.size)
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

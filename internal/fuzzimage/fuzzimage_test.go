package fuzzimage

import (
	"bytes"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/standbykit/standbykit/internal/extent"
)

func TestSparseRoundTrip(t *testing.T) {
	img := make([]byte, 3*Unit)
	copy(img[10:], "head")
	copy(img[5000:], bytes.Repeat([]byte{7}, 70000-5000)) // longer than one chunk
	copy(img[3*Unit-3:], "end")
	in := Sparse(img)
	if len(in) > 70000 {
		t.Fatalf("sparse input of %d bytes", len(in))
	}
	got := Decode(in, 1<<20)
	if got.Size() != int64(len(img)) || !bytes.Equal(got.Bytes(), img) {
		t.Fatal("decoded image differs")
	}
	if capped := Decode(in, Unit); capped.Size() != Unit || !bytes.Equal(capped.Bytes(), img[:Unit]) {
		t.Fatal("capped image differs")
	}
}

func TestReadAtPastEnd(t *testing.T) {
	img := Decode(Encode(Unit, []Chunk{{Unit - 2, []byte("abcd")}}), 1<<20)
	p := make([]byte, 4)
	n, err := img.ReadAt(p, Unit-2)
	if n != 2 || err != io.EOF || string(p[:2]) != "ab" {
		t.Fatalf("ReadAt at the end: %d, %v, %q", n, err, p[:n])
	}
	if n, err := img.ReadAt(p, Unit); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt past the end: %d, %v", n, err)
	}
	if _, err := img.ReadAt(p, -1); err == nil {
		t.Fatal("negative offset accepted")
	}
	// A truncated chunk is cut, a truncated header ignored.
	in := Encode(Unit, []Chunk{{0, []byte("xyz")}})
	if got := Decode(in[:len(in)-1], 1<<20).Bytes(); string(got[:3]) != "xy\x00" {
		t.Fatalf("truncated chunk: %q", got[:3])
	}
	if got := Decode(append(in, 1, 2, 3, 4, 5), 1<<20).Bytes(); string(got[:4]) != "xyz\x00" {
		t.Fatalf("truncated header: %q", got[:4])
	}
}

func TestCorpusFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seed")
	data := []byte("\x00\xffgo test fuzz v1\n\")")
	if err := WriteCorpusFile(path, data); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCorpusFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %q, %v", got, err)
	}
	if _, err := ParseCorpusFile([]byte("go test fuzz v1\nstring(\"x\")\n")); err == nil {
		t.Fatal("a string argument accepted")
	}
}

func TestPackRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sparse := make([]byte, 100000)
	for range 300 {
		sparse[r.IntN(len(sparse))] = byte(r.IntN(255) + 1)
	}
	for name, file := range map[string][]byte{
		"empty":                 {},
		"zeros":                 make([]byte, 1000),
		"a gap of 15 zeros":     append(append(bytes.Repeat([]byte{1}, 3), make([]byte, 15)...), 2),
		"a gap of 17 zeros":     append(append(bytes.Repeat([]byte{1}, 3), make([]byte, 17)...), 2),
		"a run over 64 KiB":     bytes.Repeat([]byte{9}, 0x1ffff),
		"sparse":                sparse,
		"ends in a nonzero run": {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 5},
	} {
		in := Pack(file)
		if got := Unpack(in, 1<<20); !bytes.Equal(got, file) {
			t.Errorf("%s: Unpack(Pack(%d bytes)) differs", name, len(file))
		}
	}
	if n := len(Pack(make([]byte, 1000))); n != 4 {
		t.Errorf("1000 zeros packed into %d bytes, want 4", n)
	}
	if n := len(Pack(sparse)); n > 300*(6+15)+4 {
		t.Errorf("300 scattered bytes packed into %d bytes", n)
	}
}

func TestUnpackHostile(t *testing.T) {
	// Length 8; a run at 6 of 4 bytes (cut at the file's end); a run at 1
	// claiming 9 bytes of which the input holds 1.
	in := []byte{8, 0, 0, 0, 6, 0, 0, 0, 4, 0, 1, 2, 3, 4, 1, 0, 0, 0, 9, 0, 5}
	if got := Unpack(in, 1<<20); !bytes.Equal(got, []byte{0, 5, 0, 0, 0, 0, 1, 2}) {
		t.Errorf("Unpack: %v", got)
	}
	if got := Unpack([]byte{0xff, 0xff, 0xff, 0xff}, 4096); len(got) != 4096 {
		t.Errorf("a 4 GiB claim unpacked to %d bytes, want the limit", len(got))
	}
	if got := Unpack([]byte{1, 2}, 4096); got != nil {
		t.Errorf("a 2-byte input unpacked to %v", got)
	}
	// A run far past the end is dropped.
	if got := Unpack([]byte{2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 0, 7}, 4096); !bytes.Equal(got, []byte{0, 0}) {
		t.Errorf("Unpack: %v", got)
	}
}

func TestReadOffsets(t *testing.T) {
	got := ReadOffsets(-5, []extent.Extent{{Off: 100, Len: 25}, {Off: 1 << 40, Len: 1 << 40}}, 10, 50)
	want := []int64{0, 0, 100, 110, 120, 1 << 40, 1<<40 + 10}
	if !slices.Equal(got, want) {
		t.Errorf("ReadOffsets = %v, want %v", got, want)
	}
}

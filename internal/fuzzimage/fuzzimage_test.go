package fuzzimage

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"
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

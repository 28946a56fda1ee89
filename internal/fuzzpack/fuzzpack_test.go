package fuzzpack

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sparse := make([]byte, 100000)
	for range 300 {
		sparse[r.IntN(len(sparse))] = byte(r.IntN(255) + 1)
	}
	for name, file := range map[string][]byte{
		"empty":                 {},
		"zeros":                 make([]byte, 1000),
		"a gap of 7 zeros":      append(append(bytes.Repeat([]byte{1}, 3), make([]byte, 7)...), 2),
		"a gap of 9 zeros":      append(append(bytes.Repeat([]byte{1}, 3), make([]byte, 9)...), 2),
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
	if n := len(Pack(sparse)); n > 300*(6+1)+4 {
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

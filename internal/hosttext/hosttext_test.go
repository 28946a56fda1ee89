package hosttext

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"disk full", 64, "disk full"},
		{"disk full", 9, "disk full"},
		{"disk full", 8, "disk …"}, // "…" takes 3 bytes
		{"\x1b[2Jgone\r\nfake line", 64, "\uFFFD[2Jgone\uFFFD\uFFFDfake line"},
		{"tab\tkept", 64, "tab\tkept"},
		{"bad \xff byte", 64, "bad \uFFFD byte"},
		{"ééé", 5, "é…"},
		{"abc", 2, "ab"},
		{"abc", 0, ""},
	} {
		got := Clip(c.in, c.max)
		if got != c.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
		if len(got) > c.max || !utf8.ValidString(got) {
			t.Errorf("Clip(%q, %d) = %q: %d bytes, valid %t", c.in, c.max, got, len(got), utf8.ValidString(got))
		}
	}
}

func TestClipHuge(t *testing.T) {
	s := strings.Repeat("a\x07", 4<<20)
	got := Clip(s, 1024)
	if len(got) > 1024 || !strings.HasSuffix(got, "…") || strings.ContainsRune(got, '\x07') {
		t.Errorf("Clip of 8 MiB: %d bytes, ends %q", len(got), got[len(got)-8:])
	}
	allocs := testing.AllocsPerRun(5, func() { Clip(s, 1024) })
	if allocs > 16 {
		t.Errorf("Clip of 8 MiB: %v allocations", allocs)
	}
}

func TestWrap(t *testing.T) {
	if Wrap(nil, 10) != nil {
		t.Error("Wrap(nil) is not nil")
	}
	err := Wrap(fmt.Errorf("host says %s: %w", strings.Repeat("x", 5000), io.ErrUnexpectedEOF), 100)
	if len(err.Error()) > 100 {
		t.Errorf("wrapped error text of %d bytes", len(err.Error()))
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("errors.Is does not see through Wrap")
	}
}

package sample

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/standbykit/standbykit/p2v/ext4"
	"github.com/standbykit/standbykit/p2v/ntfs"
	"github.com/standbykit/standbykit/p2v/regf"
)

// Excerpt is a line of a sample system's configuration that StandbyKit's
// P2V fixups change: read from a point's disk, then from its boot point's,
// it shows a fixup before and after.
type Excerpt struct {
	Where string // a file, or a registry key
	Text  string
}

// Excerpts reads, from a disk of the system (disk 0 of a point, or of a
// boot point), the lines P2V changes: for Linux the root entry of
// /etc/fstab and the default kernel command line of grub.cfg, for Windows
// the LSI SAS driver's Start value and the disk class's UpperFilters.
func (s System) Excerpts(disk io.ReaderAt, size int64) ([]Excerpt, error) {
	switch s {
	case Linux:
		return linuxExcerpts(disk, size)
	case Windows:
		return windowsExcerpts(disk, size)
	}
	return nil, fmt.Errorf("sample: system %q has no excerpts", s)
}

func linuxExcerpts(disk io.ReaderAt, size int64) ([]Excerpt, error) {
	p, err := partition(disk, size, linuxRoot)
	if err != nil {
		return nil, err
	}
	fs, err := ext4.Open(io.NewSectionReader(disk, p.Start, p.Size), p.Size)
	if err != nil {
		return nil, err
	}
	var out []Excerpt
	for _, want := range []struct {
		file  string
		match func(fields []string) bool
	}{
		{"/etc/fstab", func(f []string) bool { return len(f) > 1 && f[1] == "/" && !strings.HasPrefix(f[0], "#") }},
		{"/boot/grub/grub.cfg", func(f []string) bool { return len(f) > 2 && f[0] == "linux" }},
	} {
		b, err := fs.ReadFile(want.file)
		if err != nil {
			return nil, err
		}
		line, ok := firstLine(string(b), want.match)
		if !ok {
			return nil, fmt.Errorf("sample: %s has no line to show", want.file)
		}
		out = append(out, Excerpt{Where: want.file, Text: line})
	}
	return out, nil
}

func firstLine(text string, match func([]string) bool) (string, bool) {
	for line := range strings.Lines(text) {
		if match(strings.Fields(line)) {
			return strings.Join(strings.Fields(line), " "), true
		}
	}
	return "", false
}

const (
	lsiSASKey    = `ControlSet001\Services\LSI_SAS`
	diskClassKey = `ControlSet001\Control\Class\{4d36e967-e325-11ce-bfc1-08002be10318}`
)

func windowsExcerpts(disk io.ReaderAt, size int64) ([]Excerpt, error) {
	p, err := partition(disk, size, windowsC)
	if err != nil {
		return nil, err
	}
	vol, err := ntfs.Open(io.NewSectionReader(disk, p.Start, p.Size), p.Size)
	if err != nil {
		return nil, err
	}
	f, err := vol.Lookup(systemPath)
	if err != nil {
		return nil, err
	}
	b, err := f.ReadAll()
	if err != nil {
		return nil, err
	}
	h, err := regf.Open(b)
	if err != nil {
		return nil, err
	}
	start, err := value(h, lsiSASKey, "Start")
	if err != nil {
		return nil, err
	}
	filters, err := value(h, diskClassKey, "UpperFilters")
	if err != nil {
		return nil, err
	}
	return []Excerpt{
		{Where: `HKLM\SYSTEM\` + lsiSASKey, Text: "Start = " + start},
		{Where: `HKLM\SYSTEM\` + diskClassKey, Text: "UpperFilters = " + filters},
	}, nil
}

// value formats a DWORD or multi-string value.
func value(h *regf.Hive, key, name string) (string, error) {
	k, err := h.Key(key)
	if err != nil {
		return "", err
	}
	v, err := k.Value(name)
	if err != nil {
		return "", err
	}
	switch v.Type() {
	case regf.RegDWORD:
		n, err := v.DWORD()
		return fmt.Sprint(n), err
	case regf.RegMultiSZ:
		list, err := v.MultiString()
		return strings.Join(list, ", "), err
	}
	return "", errors.New("sample: " + key + `\` + name + " is a " + regf.TypeName(v.Type()))
}

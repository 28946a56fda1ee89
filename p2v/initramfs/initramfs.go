package initramfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Errors returned by Read and ReadFile; test them with errors.Is. Errors
// from the underlying io.Reader are returned as they are (wrapped).
var (
	// ErrCorrupt: the image is damaged: bad cpio header, truncated
	// stream, checksum mismatch, junk inside a compressed member.
	ErrCorrupt = errors.New("initramfs: corrupt image")
	// ErrUnsupported: a format this package does not read (an unknown or
	// unsupported compression such as lzo, an old binary or odc cpio).
	ErrUnsupported = errors.New("initramfs: unsupported format")
	// ErrTooLarge: the image exceeds a limit: the caller's limit on
	// decompressed bytes, a decompressor window or the entry count.
	ErrTooLarge = errors.New("initramfs: too large")
)

const (
	// DefaultLimit is the decompressed-size limit used when Read or
	// ReadFile is given a limit ≤ 0.
	DefaultLimit = 1 << 30
	// MaxReadFile is the largest file ReadFile returns.
	MaxReadFile = 1 << 20
	// maxEntries bounds the entry list (real images have a few thousand).
	maxEntries = 1 << 20
	// maxBuiltinFile bounds the modules.builtin{,.modinfo} files kept.
	maxBuiltinFile = 8 << 20
	// maxPath is the kernel's PATH_MAX: the longest name and symlink
	// target the kernel accepts in an initramfs.
	maxPath = 4096
)

// Entry is one member of an archive, in archive order.
type Entry struct {
	// Name is the path as stored (e.g. "usr/lib/modules/..." or
	// "./etc/fstab"); TRAILER!!! records are not listed.
	Name string
	// Mode holds the file type and permission bits.
	Mode fs.FileMode
	// Size is the data size from the header (0 for all but the last
	// member of a newc hard-link group).
	Size int64
	// LinkTarget is a symlink's target.
	LinkTarget string
}

// Segment describes one top-level piece of the image: an uncompressed
// cpio archive or a compressed member holding one or more archives.
type Segment struct {
	// Format is "cpio" for an uncompressed archive, else the compression:
	// "gzip", "xz", "zstd", "lz4", "bzip2" or "lzma".
	Format string
	// Offset is where the segment starts in the image.
	Offset int64
}

// Archive is the listing of an initramfs image.
type Archive struct {
	// Entries lists every member of every archive, in order. A later
	// member with the same name replaces an earlier one when the kernel
	// unpacks the image.
	Entries []Entry
	// Segments lists the archives and compressed members found.
	Segments []Segment

	modules  map[string]bool
	versions map[string]bool
	builtin  map[string][]string // builtin list file path → module names
}

// Read lists the initramfs image read from r: concatenated cpio newc
// (070701) and crc (070702) archives, uncompressed or compressed with
// gzip, xz, zstd, lz4 (legacy frames), bzip2 or lzma, separated by zero
// padding, as the kernel unpacks them. File data is read and discarded,
// except symlink targets and the modules.builtin lists. limit bounds the
// total number of decompressed bytes (DefaultLimit if ≤ 0).
func Read(r io.Reader, limit int64) (*Archive, error) {
	p := newParser(r, limit, "")
	if err := p.run(); err != nil {
		return nil, err
	}
	return p.arch, nil
}

// ReadFile reads the whole image like Read and returns the content of
// the regular file name (the last one, as the kernel would unpack it).
// name is compared after removing a leading "/" or "./". Files larger
// than MaxReadFile give ErrTooLarge; a missing file gives an error
// matching fs.ErrNotExist.
func ReadFile(r io.Reader, limit int64, name string) ([]byte, error) {
	want := cleanName(name)
	if want == "" || want == "." {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrInvalid}
	}
	p := newParser(r, limit, want)
	if err := p.run(); err != nil {
		return nil, err
	}
	switch {
	case !p.found:
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrNotExist}
	case p.foundMode.Type() != 0:
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fmt.Errorf("%w: not a regular file (%v)", fs.ErrInvalid, p.foundMode.Type())}
	case p.foundBig:
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrTooLarge, name, MaxReadFile)
	}
	return p.foundData, nil
}

// Modules returns the kernel modules (.ko, .ko.xz, .ko.zst, .ko.gz) found
// under lib/modules/<version>/ or usr/lib/modules/<version>/, for every
// version, as sorted base names without the suffix and with '-' turned
// into '_' as modprobe does ("vmw_pvscsi", "ahci", "nvme_core").
func (a *Archive) Modules() []string { return sortedKeys(a.modules) }

// Builtin returns the modules built into the kernel, from the
// modules.builtin and modules.builtin.modinfo files of the archive,
// normalised like Modules. It is empty when the image has neither file.
func (a *Archive) Builtin() []string {
	set := map[string]bool{}
	for _, names := range a.builtin {
		for _, n := range names {
			set[n] = true
		}
	}
	return sortedKeys(set)
}

// KernelVersions returns the <version> directories under lib/modules/ and
// usr/lib/modules/.
func (a *Archive) KernelVersions() []string { return sortedKeys(a.versions) }

// Has reports whether module (a name such as "vmw-pvscsi", "mptsas" or
// "nvme.ko") is a module file in the archive or listed as built in.
func (a *Archive) Has(module string) bool {
	m := moduleName(module)
	if m == "" {
		return false
	}
	if a.modules[m] {
		return true
	}
	for _, names := range a.builtin {
		if slices.Contains(names, m) {
			return true
		}
	}
	return false
}

// Lookup returns the last entry named name (compared like ReadFile).
func (a *Archive) Lookup(name string) (Entry, bool) {
	want := cleanName(name)
	for i := len(a.Entries) - 1; i >= 0; i-- {
		if cleanName(a.Entries[i].Name) == want {
			return a.Entries[i], true
		}
	}
	return Entry{}, false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// cleanName turns a stored name into a relative slash path: "./lib",
// "/lib" and "lib/" all become "lib"; the root is ".".
func cleanName(name string) string {
	name = path.Clean("/" + name)
	if name == "/" {
		return "."
	}
	return name[1:]
}

var moduleSuffixes = []string{".ko.xz", ".ko.zst", ".ko.gz", ".ko"}

// moduleName normalises a module file or module name: base name, no
// .ko{,.xz,.zst,.gz} suffix, '-' → '_'.
func moduleName(s string) string {
	s = path.Base(s)
	for _, suf := range moduleSuffixes {
		if strings.HasSuffix(s, suf) {
			s = strings.TrimSuffix(s, suf)
			break
		}
	}
	if s == "." || s == "/" {
		return ""
	}
	return strings.ReplaceAll(s, "-", "_")
}

// splitModulesPath splits a cleaned name under [usr/]lib/modules/ into the
// kernel version and the rest ("" for the version directory itself).
func splitModulesPath(name string) (ver, rest string, ok bool) {
	name = strings.TrimPrefix(name, "usr/")
	after, found := strings.CutPrefix(name, "lib/modules/")
	if !found {
		return "", "", false
	}
	ver, rest, _ = strings.Cut(after, "/")
	if ver == "" {
		return "", "", false
	}
	return ver, rest, true
}

// isModuleFile reports whether the path rest (below lib/modules/<ver>/)
// is a kernel module, and returns its normalised name.
func isModuleFile(rest string) (string, bool) {
	base := path.Base(rest)
	for _, suf := range moduleSuffixes {
		if strings.HasSuffix(base, suf) && len(base) > len(suf) {
			return moduleName(base), true
		}
	}
	return "", false
}

// isBuiltinList reports whether rest names lib/modules/<ver>/modules.builtin
// or modules.builtin.modinfo.
func isBuiltinList(rest string) bool {
	return rest == "modules.builtin" || rest == "modules.builtin.modinfo"
}

// parseBuiltin extracts module names from modules.builtin (one
// "kernel/.../name.ko" path a line) or modules.builtin.modinfo
// (NUL-separated "name.key=value" strings).
func parseBuiltin(rest string, data []byte) []string {
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if n = moduleName(n); n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if rest == "modules.builtin.modinfo" {
		for rec := range bytes.SplitSeq(data, []byte{0}) {
			mod, _, ok := bytes.Cut(rec, []byte{'.'})
			if ok && len(mod) > 0 && bytes.IndexByte(rec, '=') > len(mod) {
				add(string(mod))
			}
		}
		return out
	}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		add(line)
	}
	return out
}

package ntfs

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Range is a physical extent of a file's data: Length bytes at byte Offset
// within the volume.
//
// Resident is set when the bytes lie inside the file's MFT record rather
// than in clusters of their own. The record is protected by its update
// sequence: on disk, the bytes at volume offsets 510 and 511 modulo 512 of a
// resident range hold the record's update sequence number instead of file
// data (the file's bytes are in the record's update sequence array), and
// a writer that changes the record must keep the two consistent. Use
// File.PatchAt to patch resident data.
type Range struct {
	Offset   int64
	Length   int64
	Resident bool
}

// End returns the first volume offset past the range.
func (r Range) End() int64 { return r.Offset + r.Length }

// Patch is a same-size, in-place edit of the volume: Data replaces the
// bytes at volume offset Offset.
type Patch struct {
	Offset int64
	Data   []byte
}

// File is a file or directory of the volume: an MFT base record and the
// attributes of its extension records.
type File struct {
	v     *Volume
	num   uint64
	seq   uint16
	flags uint16
	attrs []*attr
	name  string
}

// loadFile reads the file whose MFT reference is ref (a sequence number of
// 0 is not checked).
func (v *Volume) loadFile(ref uint64, name string) (*File, error) {
	num := refNum(ref)
	rec, err := v.readRecord(num)
	if err != nil {
		return nil, err
	}
	if rec.flags&recInUse == 0 {
		return nil, corruptf("MFT record %d (%s) is not in use", num, name)
	}
	if rec.base != 0 {
		return nil, corruptf("MFT record %d (%s) is an extension record", num, name)
	}
	if s := refSeq(ref); s != 0 && rec.seq != 0 && s != rec.seq {
		return nil, corruptf("MFT record %d (%s) has sequence %d, reference has %d", num, name, rec.seq, s)
	}
	attrs, err := v.gatherAttrs(rec)
	if err != nil {
		return nil, fmt.Errorf("MFT record %d (%s): %w", num, name, err)
	}
	return &File{v: v, num: num, seq: rec.seq, flags: rec.flags, attrs: attrs, name: name}, nil
}

// Record returns the file's MFT record number.
func (f *File) Record() uint64 { return f.num }

// Name returns the name the file was looked up by ("" for the root).
func (f *File) Name() string { return f.name }

// IsDir reports whether the file is a directory.
func (f *File) IsDir() bool {
	if f.flags&recDirectory != 0 {
		return true
	}
	for _, a := range f.attrs {
		if a.typ == atIndexRoot && a.name == "$I30" {
			return true
		}
	}
	return false
}

// data returns the file's unnamed $DATA stream.
func (f *File) data() (*stream, error) {
	s, err := f.v.newStream(f.attrs, atData, "")
	if err != nil {
		if errors.Is(err, errNoAttr) {
			return nil, fmt.Errorf("%w: %s has no data stream", ErrNotFound, f.name)
		}
		return nil, err
	}
	return s, nil
}

// Size returns the size of the file's data in bytes (0 for a directory
// or a file without data).
func (f *File) Size() int64 {
	s, err := f.data()
	if err != nil {
		return 0
	}
	return s.size
}

// ReadAt reads the file's data at off, as io.ReaderAt does.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	s, err := f.data()
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("ntfs: negative offset %d", off)
	}
	if off >= s.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > s.size-off {
		n = int(s.size - off)
	}
	if err := s.readAt(p[:n], off); err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// ReadAll returns the file's data. Files larger than 256 MiB are refused
// with ErrUnsupported; sparse regions read as zeros.
func (f *File) ReadAll() ([]byte, error) {
	s, err := f.data()
	if err != nil {
		return nil, err
	}
	if err := s.checkReadable(); err != nil {
		return nil, err
	}
	if s.size > maxReadAll {
		return nil, unsupportedf("%s: %d bytes is more than ReadAll reads", f.name, s.size)
	}
	buf := make([]byte, s.size)
	if err := s.readAt(buf, 0); err != nil {
		return nil, err
	}
	return buf, nil
}

// Ranges returns the physical byte ranges of the file's data in file order;
// their lengths add up to Size. Compressed, encrypted and sparse data, and
// data whose initialized size is below its size, have no such ranges
// (ErrUnsupported). For resident data, see Range.
func (f *File) Ranges() ([]Range, error) {
	s, err := f.data()
	if err != nil {
		return nil, err
	}
	if err := s.checkReadable(); err != nil {
		return nil, err
	}
	if s.resident != nil {
		return f.v.recordRanges(s.record, int64(s.valueOff), s.size)
	}
	if s.flags&attrSparse != 0 {
		return nil, unsupportedf("%s: sparse data", f.name)
	}
	if s.initSize < s.size {
		return nil, unsupportedf("%s: initialized size %d below data size %d", f.name, s.initSize, s.size)
	}
	return s.physical(0, s.size)
}

// recordRanges maps bytes [off, off+n) of MFT record num to the volume.
func (v *Volume) recordRanges(num uint64, off, n int64) ([]Range, error) {
	if n == 0 {
		return []Range{}, nil
	}
	rs, err := v.mft.physical(int64(num)*int64(v.recordSize)+off, n)
	if err != nil {
		return nil, err
	}
	for i := range rs {
		rs[i].Resident = true
	}
	return rs, nil
}

// PatchAt returns the volume patches that make the file's data at off read
// p. For non-resident data they are p split over the data's ranges; for
// resident data they rewrite the value inside the MFT record and the
// record's update sequence array, so that the record still passes its
// update-sequence check. The file size is never changed: off+len(p) must
// not exceed Size.
func (f *File) PatchAt(off int64, p []byte) ([]Patch, error) {
	s, err := f.data()
	if err != nil {
		return nil, err
	}
	if err := s.checkReadable(); err != nil {
		return nil, err
	}
	if off < 0 || off > s.size || int64(len(p)) > s.size-off {
		return nil, fmt.Errorf("ntfs: patch of %d bytes at %d outside %s's %d bytes", len(p), off, f.name, s.size)
	}
	if len(p) == 0 {
		return nil, nil
	}
	if s.resident == nil {
		if s.initSize < off+int64(len(p)) {
			return nil, unsupportedf("%s: patch past the initialized size %d", f.name, s.initSize)
		}
		rs, err := s.physical(off, int64(len(p)))
		if err != nil {
			return nil, err
		}
		var out []Patch
		for _, r := range rs {
			out = append(out, Patch{Offset: r.Offset, Data: append([]byte(nil), p[:r.Length]...)})
			p = p[r.Length:]
		}
		return out, nil
	}
	if s.record < 4 {
		return nil, unsupportedf("record %d is mirrored in $MFTMirr", s.record)
	}
	raw, err := f.v.readRecordRaw(s.record)
	if err != nil {
		return nil, err
	}
	usaOff, _, err := usaBounds(raw, "MFT record")
	if err != nil {
		return nil, err
	}
	start := int64(s.valueOff) + off
	usaTouched := false
	for i, c := range p {
		o := int(start) + i
		if o%fixupStride >= fixupStride-2 {
			// The byte lives in the update sequence array.
			raw[usaOff+2*(o/fixupStride+1)+o%fixupStride-(fixupStride-2)] = c
			usaTouched = true
			continue
		}
		raw[o] = c
	}
	// Check the result parses as before.
	check := append([]byte(nil), raw...)
	if _, err := f.v.parseRecord(check, s.record); err != nil {
		return nil, err
	}
	var out []Patch
	add := func(from, n int64) error {
		rs, err := f.v.recordRanges(s.record, from, n)
		if err != nil {
			return err
		}
		for _, r := range rs {
			out = append(out, Patch{Offset: r.Offset, Data: append([]byte(nil), raw[from:from+r.Length]...)})
			from += r.Length
		}
		return nil
	}
	if usaTouched {
		_, count, _ := usaBounds(raw, "")
		if err := add(int64(usaOff), int64(2*count)); err != nil {
			return nil, err
		}
	}
	if err := add(start, int64(len(p))); err != nil {
		return nil, err
	}
	return out, nil
}

// Root returns the root directory.
func (v *Volume) Root() (*File, error) {
	return v.loadFile(recRoot, "/")
}

// splitPath splits a path on '/' and '\', dropping empty and "." parts.
func splitPath(path string) []string {
	parts := strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '\\' })
	out := parts[:0]
	for _, p := range parts {
		if p != "." {
			out = append(out, p)
		}
	}
	return out
}

// Lookup finds the file at path, whose components are separated by '/' or
// '\' and compared case-insensitively as NTFS does (through the volume's
// $UpCase table). "" and "/" are the root directory.
func (v *Volume) Lookup(path string) (*File, error) {
	parts := splitPath(path)
	if len(parts) > maxPathSegments {
		return nil, fmt.Errorf("%w: path of %d components", ErrNotFound, len(parts))
	}
	f, err := v.Root()
	if err != nil {
		return nil, fmt.Errorf("root directory: %w", err)
	}
	for i, name := range parts {
		if !f.IsDir() {
			return nil, fmt.Errorf("%w: %s is not a directory", ErrNotFound, strings.Join(parts[:i], "/"))
		}
		ref, err := f.lookupEntry(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(parts[:i+1], "/"), err)
		}
		if f, err = v.loadFile(ref, name); err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(parts[:i+1], "/"), err)
		}
	}
	return f, nil
}

// ReadDir returns the names in the directory at path in collation order
// (an in-order walk of its $I30 B-tree), without DOS (8.3) aliases and
// without the root's "." entry.
func (v *Volume) ReadDir(path string) ([]string, error) {
	f, err := v.Lookup(path)
	if err != nil {
		return nil, err
	}
	return f.ReadDir()
}

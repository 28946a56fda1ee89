package lvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Errors returned by this package, wrapped with detail; test with errors.Is.
var (
	// ErrNotLVM: no LVM2 label in the first four sectors.
	ErrNotLVM = errors.New("lvm: not an LVM2 physical volume")
	// ErrCorrupt: a label, header or metadata text that does not add up,
	// including every checksum mismatch.
	ErrCorrupt = errors.New("lvm: corrupt physical volume or metadata")
	// ErrUnsupported: a valid structure this package does not handle (a
	// label type other than "LVM2 001", a metadata area version other than
	// 1, segment types other than striped/linear).
	ErrUnsupported = errors.New("lvm: unsupported")
	// ErrNotFound: a logical or physical volume that is not there, or an
	// offset outside a logical volume.
	ErrNotFound = errors.New("lvm: not found")
)

// SectorSize is LVM2's unit for on-disk sizes in the metadata text.
const SectorSize = 512

const (
	labelID       = "LABELONE"
	labelType     = "LVM2 001"
	labelScan     = 4  // sectors searched for the label
	labelHdrSize  = 32 // id, sector, crc, offset, type
	mdaHeaderSize = 512
	mdaMagic      = "\x20LVM2\x20x[5A%r0N*>"
	mdaVersion    = 1

	// RawLocnIgnored is set in a raw location's flags when the metadata
	// area is marked ignored (pvchange --metadataignore y).
	RawLocnIgnored = 0x1

	// limits on what ReadPV will believe
	maxMetadataSize = 64 << 20
)

// Area is a byte range on the physical volume as listed in the PV header
// (a disk_locn). Size 0 in a data area means "to the end of the device".
type Area struct {
	Offset int64
	Size   int64
}

// RawLocation is one raw_locn of a metadata area header: where a copy of
// the metadata text lies, relative to the start of the metadata area.
type RawLocation struct {
	Offset   int64
	Size     int64
	Checksum uint32
	Flags    uint32
}

// MetadataArea is a parsed metadata area header (mda_header).
type MetadataArea struct {
	Start     int64 // byte offset of the area on the PV (and of its header)
	Size      int64 // bytes, header included
	Version   uint32
	Locations []RawLocation
}

// PV is what ReadPV found on a physical volume.
type PV struct {
	LabelSector int64  // sector (0..3) holding the label
	UUID        string // PV UUID in LVM's dashed form (6-4-4-4-4-4-6)
	DeviceSize  int64  // bytes, as recorded in the PV header

	DataAreas     []Area
	MetadataAreas []Area

	// Extension header (LVM2 >= 2.02.110); ExtVersion is 0 when absent.
	ExtVersion      uint32
	ExtFlags        uint32
	BootloaderAreas []Area

	// MDAs holds the header of every metadata area that could be read.
	MDAs []MetadataArea

	// Metadata is the current metadata text (without its terminating NUL)
	// from the metadata area with the highest seqno, and VG is its parse.
	// Both are nil when the PV carries no metadata: an orphan PV, one
	// created with --metadatacopies 0, or one whose areas are all ignored.
	Metadata []byte
	VG       *VG
}

// ReadPV reads the LVM2 label, PV header, metadata area headers and the
// current metadata text of the physical volume r of size bytes, checking
// every checksum, and parses the metadata.
func ReadPV(r io.ReaderAt, size int64) (*PV, error) {
	if size < SectorSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrNotLVM, size)
	}
	n := int64(labelScan * SectorSize)
	if n > size {
		n = size
	}
	head := make([]byte, n)
	if err := readAt(r, head, 0, size); err != nil {
		return nil, err
	}
	pv := &PV{LabelSector: -1}
	var labelErr error
	var sec []byte
	for s := int64(0); (s+1)*SectorSize <= n; s++ {
		b := head[s*SectorSize : (s+1)*SectorSize]
		if string(b[:8]) != labelID {
			continue
		}
		if got := int64(binary.LittleEndian.Uint64(b[8:])); got != s {
			labelErr = fmt.Errorf("%w: label in sector %d claims sector %d", ErrCorrupt, s, got)
			continue
		}
		want := binary.LittleEndian.Uint32(b[16:])
		if got := calcCRC(initialCRC, b[20:]); got != want {
			labelErr = fmt.Errorf("%w: label checksum %#08x, computed %#08x", ErrCorrupt, want, got)
			continue
		}
		pv.LabelSector = s
		sec = b
		break
	}
	if sec == nil {
		if labelErr != nil {
			return nil, labelErr
		}
		return nil, ErrNotLVM
	}
	if string(sec[24:32]) != labelType {
		return nil, fmt.Errorf("%w: label type %q", ErrUnsupported, bytes.TrimRight(sec[24:32], "\x00"))
	}
	if err := pv.parseHeader(sec); err != nil {
		return nil, err
	}
	if err := pv.readMetadata(r, size); err != nil {
		return nil, err
	}
	return pv, nil
}

// parseHeader decodes the pv_header that follows the label header in
// the label sector.
func (pv *PV) parseHeader(sec []byte) error {
	off := int(binary.LittleEndian.Uint32(sec[20:]))
	if off < labelHdrSize || off > SectorSize-40 {
		return fmt.Errorf("%w: PV header offset %d", ErrCorrupt, off)
	}
	b := sec[off:]
	pv.UUID = formatUUID(b[:32])
	pv.DeviceSize = int64(binary.LittleEndian.Uint64(b[32:]))
	if pv.DeviceSize < 0 {
		return fmt.Errorf("%w: PV device size", ErrCorrupt)
	}
	p := 40
	var err error
	if pv.DataAreas, p, err = readLocns(b, p); err != nil {
		return err
	}
	if pv.MetadataAreas, p, err = readLocns(b, p); err != nil {
		return err
	}
	if p+8 <= len(b) {
		pv.ExtVersion = binary.LittleEndian.Uint32(b[p:])
		pv.ExtFlags = binary.LittleEndian.Uint32(b[p+4:])
		if pv.ExtVersion != 0 {
			// A damaged bootloader area list is not worth refusing the PV.
			pv.BootloaderAreas, _, _ = readLocns(b, p+8)
		}
	}
	return nil
}

// readLocns reads a zero-terminated disk_locn list starting at b[p:] and
// returns the position after the terminator.
func readLocns(b []byte, p int) ([]Area, int, error) {
	var out []Area
	for {
		if p+16 > len(b) {
			return nil, p, fmt.Errorf("%w: unterminated area list in PV header", ErrCorrupt)
		}
		o := binary.LittleEndian.Uint64(b[p:])
		s := binary.LittleEndian.Uint64(b[p+8:])
		p += 16
		if o == 0 {
			return out, p, nil
		}
		if o > 1<<62 || s > 1<<62 {
			return nil, p, fmt.Errorf("%w: area %d+%d in PV header", ErrCorrupt, o, s)
		}
		out = append(out, Area{Offset: int64(o), Size: int64(s)})
	}
}

// readMetadata reads every metadata area header and keeps the valid
// metadata text with the highest seqno.
func (pv *PV) readMetadata(r io.ReaderAt, size int64) error {
	var firstErr error
	for _, a := range pv.MetadataAreas {
		mda, err := readMDAHeader(r, a, size)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		pv.MDAs = append(pv.MDAs, *mda)
		if len(mda.Locations) == 0 || mda.Locations[0].Flags&RawLocnIgnored != 0 {
			continue
		}
		text, err := readText(r, mda, mda.Locations[0], size)
		if err == nil && text == nil {
			continue
		}
		var vg *VG
		if err == nil {
			vg, err = ParseMetadata(text)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if pv.VG == nil || vg.Seqno > pv.VG.Seqno {
			pv.Metadata, pv.VG = text, vg
		}
	}
	if pv.VG == nil && firstErr != nil {
		return firstErr
	}
	return nil
}

func readMDAHeader(r io.ReaderAt, a Area, size int64) (*MetadataArea, error) {
	if a.Size < 2*mdaHeaderSize || a.Offset > size || a.Size > size-a.Offset {
		return nil, fmt.Errorf("%w: metadata area %d+%d on a %d-byte device", ErrCorrupt, a.Offset, a.Size, size)
	}
	b := make([]byte, mdaHeaderSize)
	if err := readAt(r, b, a.Offset, size); err != nil {
		return nil, err
	}
	if string(b[4:20]) != mdaMagic {
		return nil, fmt.Errorf("%w: no metadata area header at %d", ErrCorrupt, a.Offset)
	}
	want := binary.LittleEndian.Uint32(b)
	if got := calcCRC(initialCRC, b[4:]); got != want {
		return nil, fmt.Errorf("%w: metadata area header checksum %#08x, computed %#08x", ErrCorrupt, want, got)
	}
	m := &MetadataArea{
		Version: binary.LittleEndian.Uint32(b[20:]),
		Start:   int64(binary.LittleEndian.Uint64(b[24:])),
		Size:    int64(binary.LittleEndian.Uint64(b[32:])),
	}
	if m.Version != mdaVersion {
		return nil, fmt.Errorf("%w: metadata area version %d", ErrUnsupported, m.Version)
	}
	// As LVM2 does, insist on the start and take the header's size, which
	// is the one the circular buffer wraps at.
	if m.Start != a.Offset {
		return nil, fmt.Errorf("%w: metadata area header says it starts at %d, PV header %d",
			ErrCorrupt, m.Start, a.Offset)
	}
	if m.Size < 2*mdaHeaderSize || m.Size > size-m.Start {
		return nil, fmt.Errorf("%w: metadata area header size %d at %d on a %d-byte device", ErrCorrupt, m.Size, m.Start, size)
	}
	for p := 40; p+24 <= len(b); p += 24 {
		l := RawLocation{
			Offset:   int64(binary.LittleEndian.Uint64(b[p:])),
			Size:     int64(binary.LittleEndian.Uint64(b[p+8:])),
			Checksum: binary.LittleEndian.Uint32(b[p+16:]),
			Flags:    binary.LittleEndian.Uint32(b[p+20:]),
		}
		if l.Offset == 0 {
			break
		}
		m.Locations = append(m.Locations, l)
	}
	return m, nil
}

// readText reads the metadata text at l inside the circular buffer of m
// (the area minus its header), following a wrap past the end of the area
// back to just after the header, and checks its checksum. It returns
// nil, nil for an empty location.
func readText(r io.ReaderAt, m *MetadataArea, l RawLocation, size int64) ([]byte, error) {
	if l.Size == 0 {
		return nil, nil
	}
	buf := m.Size - mdaHeaderSize
	if l.Offset < mdaHeaderSize || l.Offset >= m.Size || l.Size < 0 || l.Size > buf || l.Size > maxMetadataSize {
		return nil, fmt.Errorf("%w: metadata text at %d+%d in a %d-byte area", ErrCorrupt, l.Offset, l.Size, m.Size)
	}
	text := make([]byte, l.Size)
	first := l.Size
	if l.Offset+l.Size > m.Size {
		first = m.Size - l.Offset
	}
	if err := readAt(r, text[:first], m.Start+l.Offset, size); err != nil {
		return nil, err
	}
	if first < l.Size {
		if err := readAt(r, text[first:], m.Start+mdaHeaderSize, size); err != nil {
			return nil, err
		}
	}
	if got := calcCRC(initialCRC, text); got != l.Checksum {
		return nil, fmt.Errorf("%w: metadata text checksum %#08x, computed %#08x", ErrCorrupt, l.Checksum, got)
	}
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	return text, nil
}

// readAt fills b from r at off, refusing to read past size.
func readAt(r io.ReaderAt, b []byte, off, size int64) error {
	if off < 0 || off > size || int64(len(b)) > size-off {
		return fmt.Errorf("%w: read of %d bytes at %d past the end of the %d-byte device", ErrCorrupt, len(b), off, size)
	}
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("lvm: read %d bytes at %d: %w", len(b), off, err)
}

// formatUUID renders a 32-character LVM UUID in its 6-4-4-4-4-4-6 form.
func formatUUID(b []byte) string {
	var sb []byte
	for i, c := range b {
		switch i {
		case 6, 10, 14, 18, 22, 26:
			sb = append(sb, '-')
		}
		sb = append(sb, c)
	}
	return string(sb)
}

// normUUID strips dashes so a UUID can be compared in either form.
func normUUID(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte("-"), nil))
}

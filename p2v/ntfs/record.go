package ntfs

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

// Attribute types.
const (
	atStandardInformation = 0x10
	atAttributeList       = 0x20
	atFileName            = 0x30
	atData                = 0x80
	atIndexRoot           = 0x90
	atIndexAllocation     = 0xA0
	atBitmap              = 0xB0
	atEnd                 = 0xFFFFFFFF
)

// Attribute flags.
const (
	attrCompressedMask = 0x00FF
	attrEncrypted      = 0x4000
	attrSparse         = 0x8000
)

// Record flags.
const (
	recInUse     = 0x0001
	recDirectory = 0x0002
)

// refNum returns the record number of an MFT reference.
func refNum(ref uint64) uint64 { return ref & 0xFFFFFFFFFFFF }

// refSeq returns the sequence number of an MFT reference.
func refSeq(ref uint64) uint16 { return uint16(ref >> 48) }

// applyFixups checks the update sequence of a multi-sector record (MFT
// record or INDX block) in place: the last two bytes of every 512-byte
// stride must equal the update sequence number, and are replaced by the
// saved bytes from the update sequence array.
func applyFixups(buf []byte, what string) error {
	usaOff, usaCount, err := usaBounds(buf, what)
	if err != nil {
		return err
	}
	usn := buf[usaOff : usaOff+2]
	for i := 1; i < usaCount; i++ {
		end := i * fixupStride
		if buf[end-2] != usn[0] || buf[end-1] != usn[1] {
			return corruptf("%s: update sequence mismatch in stride %d", what, i-1)
		}
	}
	for i := 1; i < usaCount; i++ {
		end := i * fixupStride
		buf[end-2] = buf[usaOff+2*i]
		buf[end-1] = buf[usaOff+2*i+1]
	}
	return nil
}

// usaBounds validates and returns the update sequence array's offset and
// entry count (the USN plus one entry per stride).
func usaBounds(buf []byte, what string) (off, count int, err error) {
	if len(buf) < fixupStride || len(buf)%fixupStride != 0 {
		return 0, 0, corruptf("%s: %d bytes is not a multiple of %d", what, len(buf), fixupStride)
	}
	off = int(binary.LittleEndian.Uint16(buf[4:]))
	count = int(binary.LittleEndian.Uint16(buf[6:]))
	if count-1 != len(buf)/fixupStride {
		return 0, 0, corruptf("%s: update sequence of %d entries for %d bytes", what, count, len(buf))
	}
	if off < 8 || off%2 != 0 || off+2*count > fixupStride-2 {
		return 0, 0, corruptf("%s: update sequence array at %d", what, off)
	}
	return off, count, nil
}

// record is a parsed MFT record (after fixups).
type record struct {
	num   uint64
	buf   []byte
	seq   uint16
	flags uint16
	base  uint64 // base record reference; 0 for a base record
	attrs []*attr
}

// attr is one attribute (or one extent of a non-resident attribute).
type attr struct {
	typ    uint32
	name   string
	flags  uint16
	id     uint16
	record uint64 // the MFT record that holds it
	off    int    // offset of its header within the record

	nonResident bool

	// Resident.
	value    []byte
	valueOff int // offset of value within the record

	// Non-resident.
	lowVCN, highVCN int64
	compUnit        uint8
	allocSize       int64
	dataSize        int64
	initSize        int64
	runs            []run
}

func (r *record) find(typ uint32, name string) *attr {
	for _, a := range r.attrs {
		if a.typ == typ && a.name == name {
			return a
		}
	}
	return nil
}

// parseRecord applies the fixups of an MFT record and parses its
// attributes.
func (v *Volume) parseRecord(buf []byte, num uint64) (*record, error) {
	what := fmt.Sprintf("MFT record %d", num)
	if string(buf[0:4]) != "FILE" {
		return nil, corruptf("%s: signature %q", what, buf[0:4])
	}
	if err := applyFixups(buf, what); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	r := &record{
		num:   num,
		buf:   buf,
		seq:   le.Uint16(buf[0x10:]),
		flags: le.Uint16(buf[0x16:]),
		base:  le.Uint64(buf[0x20:]),
	}
	first := int(le.Uint16(buf[0x14:]))
	used := int(le.Uint32(buf[0x18:]))
	if used > len(buf) || used < 0x30 {
		return nil, corruptf("%s: %d bytes in use", what, used)
	}
	if first < 0x2A || first >= used || first%8 != 0 {
		return nil, corruptf("%s: first attribute at %d", what, first)
	}
	for off := first; ; {
		if off+4 > used {
			return nil, corruptf("%s: attributes run past the bytes in use", what)
		}
		typ := le.Uint32(buf[off:])
		if typ == atEnd {
			break
		}
		if off+16 > used {
			return nil, corruptf("%s: attribute header at %d truncated", what, off)
		}
		n := int(le.Uint32(buf[off+4:]))
		if n < 0x18 || n%8 != 0 || n > used-off {
			return nil, corruptf("%s: attribute at %d of length %d", what, off, n)
		}
		a, err := parseAttr(buf[off:off+n], off, num)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		r.attrs = append(r.attrs, a)
		off += n
	}
	return r, nil
}

// parseAttr parses one attribute of length len(b) at offset off in its
// record.
func parseAttr(b []byte, off int, num uint64) (*attr, error) {
	le := binary.LittleEndian
	a := &attr{
		typ:         le.Uint32(b),
		nonResident: b[8] != 0,
		flags:       le.Uint16(b[0x0C:]),
		id:          le.Uint16(b[0x0E:]),
		record:      num,
		off:         off,
	}
	if nl := int(b[9]); nl > 0 {
		no := int(le.Uint16(b[0x0A:]))
		if no+2*nl > len(b) {
			return nil, corruptf("attribute 0x%x name out of bounds", a.typ)
		}
		a.name = utf16String(b[no : no+2*nl])
	}
	if !a.nonResident {
		vl := int64(le.Uint32(b[0x10:]))
		vo := int64(le.Uint16(b[0x14:]))
		if vo+vl > int64(len(b)) {
			return nil, corruptf("attribute 0x%x resident value out of bounds", a.typ)
		}
		a.value = b[vo : vo+vl]
		a.valueOff = off + int(vo)
		return a, nil
	}
	if len(b) < 0x40 {
		return nil, corruptf("non-resident attribute 0x%x of %d bytes", a.typ, len(b))
	}
	a.lowVCN = int64(le.Uint64(b[0x10:]))
	a.highVCN = int64(le.Uint64(b[0x18:]))
	mpOff := int(le.Uint16(b[0x20:]))
	a.compUnit = b[0x22]
	a.allocSize = int64(le.Uint64(b[0x28:]))
	a.dataSize = int64(le.Uint64(b[0x30:]))
	a.initSize = int64(le.Uint64(b[0x38:]))
	if a.lowVCN < 0 || a.highVCN < a.lowVCN-1 {
		return nil, corruptf("attribute 0x%x VCNs %d..%d", a.typ, a.lowVCN, a.highVCN)
	}
	if a.lowVCN == 0 && (a.allocSize < 0 || a.dataSize < 0 || a.initSize < 0 ||
		a.dataSize > a.allocSize || a.initSize > a.dataSize) {
		return nil, corruptf("attribute 0x%x sizes alloc %d data %d init %d",
			a.typ, a.allocSize, a.dataSize, a.initSize)
	}
	if mpOff < 0x40 || mpOff > len(b) {
		return nil, corruptf("attribute 0x%x mapping pairs at %d", a.typ, mpOff)
	}
	runs, err := decodeRuns(b[mpOff:], a.lowVCN, a.highVCN)
	if err != nil {
		return nil, fmt.Errorf("attribute 0x%x: %w", a.typ, err)
	}
	a.runs = runs
	return a, nil
}

func utf16String(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// gatherAttrs returns the attributes of the file whose base record is base:
// its own, and, if it has an $ATTRIBUTE_LIST, those of the extension
// records the list names.
func (v *Volume) gatherAttrs(base *record) ([]*attr, error) {
	al := base.find(atAttributeList, "")
	if al == nil {
		return base.attrs, nil
	}
	var list []byte
	if !al.nonResident {
		list = al.value
	} else {
		s, err := v.newStream([]*attr{al}, atAttributeList, "")
		if err != nil {
			return nil, err
		}
		if s.size > maxAttrList {
			return nil, corruptf("attribute list of %d bytes", s.size)
		}
		list = make([]byte, s.size)
		if err := s.readAt(list, 0); err != nil {
			return nil, err
		}
	}
	type key struct {
		rec uint64
		id  uint16
	}
	want := map[key]bool{}
	seen := map[uint64]bool{}
	var order []uint64
	le := binary.LittleEndian
	for off := 0; off < len(list); {
		if len(list)-off < 0x1A {
			return nil, corruptf("attribute list entry at %d truncated", off)
		}
		n := int(le.Uint16(list[off+4:]))
		if n < 0x1A || n > len(list)-off {
			return nil, corruptf("attribute list entry at %d of length %d", off, n)
		}
		ref := le.Uint64(list[off+0x10:])
		k := key{refNum(ref), le.Uint16(list[off+0x18:])}
		if k.rec != base.num && !seen[k.rec] {
			if len(order) >= maxExtensions {
				return nil, unsupportedf("more than %d extension records", maxExtensions)
			}
			seen[k.rec] = true
			order = append(order, k.rec)
		}
		want[k] = true
		off += n
	}
	attrs := append([]*attr(nil), base.attrs...)
	for _, num := range order {
		ext, err := v.readRecord(num)
		if err != nil {
			return nil, fmt.Errorf("extension record: %w", err)
		}
		if ext.flags&recInUse == 0 || refNum(ext.base) != base.num {
			return nil, corruptf("MFT record %d is not an extension of record %d", num, base.num)
		}
		for _, a := range ext.attrs {
			if want[key{num, a.id}] {
				attrs = append(attrs, a)
			}
		}
	}
	return attrs, nil
}

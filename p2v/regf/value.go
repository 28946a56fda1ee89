package regf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Value types.
const (
	RegNone           = 0
	RegSZ             = 1
	RegExpandSZ       = 2
	RegBinary         = 3
	RegDWORD          = 4
	RegDWORDBigEndian = 5
	RegLink           = 6
	RegMultiSZ        = 7
	RegResourceList   = 8
	RegQWORD          = 11
	valueCompName     = 0x0001
	dataInline        = 0x80000000
	bigDataSegment    = 16344 // bytes of data per db segment
	vkNameLen         = 2
	vkDataSize        = 4
	vkDataOff         = 8
	vkType            = 12
	vkFlags           = 16
	vkName            = 20
	maxValueDataLen   = 64 << 20 // refuse absurd sizes before allocating
)

// Value is a registry value (a vk cell).
type Value struct {
	h    *Hive
	off  uint32
	vk   []byte
	name string
}

func errorsIsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

func parseValue(h *Hive, off uint32) (*Value, error) {
	vk, err := h.cellSig(off, "vk")
	if err != nil {
		return nil, err
	}
	if len(vk) < vkName {
		return nil, fmt.Errorf("%w: vk cell at %#x too short", ErrCorrupt, off)
	}
	n := int(le16(vk, vkNameLen))
	if n > len(vk)-vkName {
		return nil, fmt.Errorf("%w: vk cell at %#x: name length %d beyond the cell", ErrCorrupt, off, n)
	}
	name, err := decodeName(vk[vkName:vkName+n], le16(vk, vkFlags)&valueCompName != 0)
	if err != nil {
		return nil, fmt.Errorf("vk cell at %#x: %w", off, err)
	}
	return &Value{h: h, off: off, vk: vk, name: name}, nil
}

// valueOffsets returns the key's value list entries.
func (k *Key) valueOffsets() ([]uint32, error) {
	n := le32(k.nk, nkValueCount)
	if n == 0 {
		return nil, nil
	}
	off := le32(k.nk, nkValueList)
	c, err := k.h.cell(off)
	if err != nil {
		return nil, fmt.Errorf("value list of %q: %w", k.name, err)
	}
	if uint64(n)*4 > uint64(len(c)) {
		return nil, fmt.Errorf("%w: value list of %q: %d entries beyond its cell", ErrCorrupt, k.name, n)
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = le32(c, 4*i)
	}
	return out, nil
}

// Values returns the key's values in stored order.
func (k *Key) Values() ([]*Value, error) {
	offs, err := k.valueOffsets()
	if err != nil {
		return nil, err
	}
	vs := make([]*Value, 0, len(offs))
	for _, o := range offs {
		v, err := parseValue(k.h, o)
		if err != nil {
			return nil, fmt.Errorf("value of %q: %w", k.name, err)
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// Value returns the value called name (case-insensitive); "" is the
// default value.
func (k *Key) Value(name string) (*Value, error) {
	vs, err := k.Values()
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		if equalFold(v.name, name) {
			return v, nil
		}
	}
	return nil, fmt.Errorf("%w: key %q has no value %q", ErrNotFound, k.name, name)
}

// Name returns the value's name ("" for the default value).
func (v *Value) Name() string { return v.name }

// Type returns the value's type (RegSZ, RegDWORD, ...).
func (v *Value) Type() uint32 { return le32(v.vk, vkType) }

// Offset returns the offset of the value's vk cell in the hive file.
func (v *Value) Offset() int64 { return fileOffset(v.off) }

// Size returns the declared data size.
func (v *Value) Size() uint32 { return le32(v.vk, vkDataSize) &^ dataInline }

// inline reports whether the data lives in the vk's data offset field.
func (v *Value) inline() bool { return le32(v.vk, vkDataSize)&dataInline != 0 }

// Bytes returns the raw data.
func (v *Value) Bytes() ([]byte, error) {
	b, _, err := v.data()
	return b, err
}

// data returns the data and, when it sits in one contiguous place of the
// file, the file offset of its first byte (-1 for db big data).
func (v *Value) data() ([]byte, int64, error) {
	size := v.Size()
	if v.inline() {
		if size > 4 {
			return nil, 0, fmt.Errorf("%w: value %q: inline data of %d bytes", ErrCorrupt, v.name, size)
		}
		return append([]byte(nil), v.vk[vkDataOff:vkDataOff+size]...), fileOffset(v.off) + 4 + vkDataOff, nil
	}
	if size == 0 {
		return []byte{}, -1, nil
	}
	if size > maxValueDataLen {
		return nil, 0, fmt.Errorf("%w: value %q: %d bytes of data", ErrUnsupported, v.name, size)
	}
	if uint64(size) > uint64(len(v.h.bins)) {
		return nil, 0, fmt.Errorf("%w: value %q: %d bytes of data in a %d-byte hive", ErrCorrupt, v.name, size, len(v.h.bins))
	}
	off := le32(v.vk, vkDataOff)
	c, err := v.h.cell(off)
	if err != nil {
		return nil, 0, fmt.Errorf("data of value %q: %w", v.name, err)
	}
	if uint64(size) <= uint64(len(c)) {
		return append([]byte(nil), c[:size]...), fileOffset(off) + 4, nil
	}
	if len(c) < 8 || string(c[:2]) != "db" {
		return nil, 0, fmt.Errorf("%w: value %q: %d bytes of data in a %d-byte cell", ErrCorrupt, v.name, size, len(c))
	}
	b, err := v.h.bigData(c, size)
	if err != nil {
		return nil, 0, fmt.Errorf("big data of value %q: %w", v.name, err)
	}
	return b, -1, nil
}

// bigData reads a db record: a segment count, then the offset of a list
// of segment cells, each holding up to 16344 bytes.
func (h *Hive) bigData(db []byte, size uint32) ([]byte, error) {
	n := int(le16(db, 2))
	if uint64(n)*bigDataSegment < uint64(size) {
		return nil, fmt.Errorf("%w: %d db segments cannot hold %d bytes", ErrCorrupt, n, size)
	}
	list, err := h.cell(le32(db, 4))
	if err != nil {
		return nil, err
	}
	if 4*n > len(list) {
		return nil, fmt.Errorf("%w: db segment list of %d entries beyond its cell", ErrCorrupt, n)
	}
	out := make([]byte, 0, size)
	for i := 0; i < n && uint32(len(out)) < size; i++ {
		seg, err := h.cell(le32(list, 4*i))
		if err != nil {
			return nil, err
		}
		take := min(bigDataSegment, int(size)-len(out))
		if len(seg) < take {
			return nil, fmt.Errorf("%w: db segment %d holds %d bytes, not %d", ErrCorrupt, i, len(seg), take)
		}
		out = append(out, seg[:take]...)
	}
	if uint32(len(out)) != size {
		return nil, fmt.Errorf("%w: db segments hold %d of %d bytes", ErrCorrupt, len(out), size)
	}
	return out, nil
}

// DWORD returns a REG_DWORD (or REG_DWORD_BIG_ENDIAN) value.
func (v *Value) DWORD() (uint32, error) {
	t := v.Type()
	if t != RegDWORD && t != RegDWORDBigEndian {
		return 0, fmt.Errorf("%w: value %q has type %s, not REG_DWORD", ErrUnsupported, v.name, TypeName(t))
	}
	b, err := v.Bytes()
	if err != nil {
		return 0, err
	}
	if len(b) != 4 {
		return 0, fmt.Errorf("%w: REG_DWORD value %q has %d bytes", ErrCorrupt, v.name, len(b))
	}
	if t == RegDWORDBigEndian {
		return binary.BigEndian.Uint32(b), nil
	}
	return binary.LittleEndian.Uint32(b), nil
}

// QWORD returns a REG_QWORD value.
func (v *Value) QWORD() (uint64, error) {
	if t := v.Type(); t != RegQWORD {
		return 0, fmt.Errorf("%w: value %q has type %s, not REG_QWORD", ErrUnsupported, v.name, TypeName(t))
	}
	b, err := v.Bytes()
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: REG_QWORD value %q has %d bytes", ErrCorrupt, v.name, len(b))
	}
	return binary.LittleEndian.Uint64(b), nil
}

// String returns a REG_SZ, REG_EXPAND_SZ or REG_LINK value, decoded from
// UTF-16LE and cut at the first NUL.
func (v *Value) String() (string, error) {
	if t := v.Type(); t != RegSZ && t != RegExpandSZ && t != RegLink {
		return "", fmt.Errorf("%w: value %q has type %s, not a string", ErrUnsupported, v.name, TypeName(t))
	}
	b, err := v.Bytes()
	if err != nil {
		return "", err
	}
	s := decodeUTF16(b[:len(b)&^1])
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s, nil
}

// MultiString returns a REG_MULTI_SZ value: the NUL-separated strings up
// to the first empty one.
func (v *Value) MultiString() ([]string, error) {
	if t := v.Type(); t != RegMultiSZ {
		return nil, fmt.Errorf("%w: value %q has type %s, not REG_MULTI_SZ", ErrUnsupported, v.name, TypeName(t))
	}
	b, err := v.Bytes()
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, s := range strings.Split(decodeUTF16(b[:len(b)&^1]), "\x00") {
		if s == "" {
			break
		}
		out = append(out, s)
	}
	return out, nil
}

// TypeName returns the REG_* name of a value type.
func TypeName(t uint32) string {
	switch t {
	case RegNone:
		return "REG_NONE"
	case RegSZ:
		return "REG_SZ"
	case RegExpandSZ:
		return "REG_EXPAND_SZ"
	case RegBinary:
		return "REG_BINARY"
	case RegDWORD:
		return "REG_DWORD"
	case RegDWORDBigEndian:
		return "REG_DWORD_BIG_ENDIAN"
	case RegLink:
		return "REG_LINK"
	case RegMultiSZ:
		return "REG_MULTI_SZ"
	case RegResourceList:
		return "REG_RESOURCE_LIST"
	case RegQWORD:
		return "REG_QWORD"
	}
	return fmt.Sprintf("type %#x", t)
}

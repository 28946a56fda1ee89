package regf

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
)

// Patch is an in-place edit of the hive file: write Data at Offset
// (relative to the start of the hive file). Why says what it is for.
type Patch struct {
	Offset int64
	Data   []byte
	Why    string
}

// Apply returns a copy of b with ps applied in order. Patches outside b
// are clipped. It is meant for tests and for callers that hold the whole
// hive in memory.
func Apply(b []byte, ps []Patch) []byte {
	out := append([]byte(nil), b...)
	for _, p := range ps {
		if p.Offset < 0 || p.Offset >= int64(len(out)) {
			continue
		}
		copy(out[p.Offset:], p.Data)
	}
	return out
}

// edit collects the writes of one operation on h.
type edit struct {
	h      *Hive
	writes []Patch // Offset relative to the hive file
	free   []freeCell
}

func (h *Hive) newEdit() *edit {
	return &edit{h: h, free: append([]freeCell(nil), h.free...)}
}

// write records data for bins offset off.
func (e *edit) write(off uint32, data []byte, why string) {
	e.writes = append(e.writes, Patch{Offset: fileOffset(off), Data: data, Why: why})
}

func (e *edit) put32(off uint32, v uint32, why string) {
	e.write(off, binary.LittleEndian.AppendUint32(nil, v), why)
}

func align8(n int) uint32 { return uint32((n + 7) &^ 7) }

// alloc takes a free cell of at least size bytes (size is a multiple of
// 8, header included): the smallest that fits, split when larger. It
// writes the new cell's (negative) size and, for a split, the size of the
// free remainder, and returns the cell's bins offset.
func (e *edit) alloc(size uint32, why string) (uint32, error) {
	best := -1
	for i, f := range e.free {
		if f.size >= size && (best < 0 || f.size < e.free[best].size) {
			best = i
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("%w: no free cell of %d bytes for %s", ErrNoRoom, size, why)
	}
	f := e.free[best]
	e.put32(f.off, uint32(-int32(size)), "allocate cell for "+why)
	if f.size > size {
		rest := freeCell{f.off + size, f.size - size}
		e.put32(rest.off, rest.size, "free remainder of the cell split for "+why)
		e.free[best] = rest
	} else {
		e.free = append(e.free[:best], e.free[best+1:]...)
	}
	return f.off, nil
}

// release marks the allocated cell at off free (positive size).
func (e *edit) release(off uint32, why string) {
	raw := int32(le32(e.h.bins, int(off)))
	size := uint32(-int64(raw))
	e.put32(off, size, why)
	e.free = append(e.free, freeCell{off, size})
}

// finish merges the writes into sorted, non-overlapping patches (later
// writes win), adds a base block checksum patch if a base block byte
// changed, and applies them to h's private copy of the hive so that
// later edits see them.
func (e *edit) finish() ([]Patch, error) {
	ps := mergePatches(e.h.b, e.writes)
	if len(ps) > 0 && ps[0].Offset < checksumOff {
		nb := Apply(e.h.b[:baseBlockSize], ps)
		ps = mergePatches(e.h.b, append(ps, Patch{
			Offset: checksumOff,
			Data:   binary.LittleEndian.AppendUint32(nil, Checksum(nb)),
			Why:    "base block checksum",
		}))
	}
	if err := e.h.reload(Apply(e.h.b, ps)); err != nil {
		return nil, fmt.Errorf("regf: internal error, the edited hive does not parse: %w", err)
	}
	return ps, nil
}

// mergePatches sorts writes and merges overlapping or adjacent ones,
// later writes winning, over the original bytes b.
func mergePatches(b []byte, writes []Patch) []Patch {
	type span struct{ lo, hi int64 }
	spans := make([]span, 0, len(writes))
	for _, w := range writes {
		spans = append(spans, span{w.Offset, w.Offset + int64(len(w.Data))})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
	var merged []span
	for _, s := range spans {
		if n := len(merged); n > 0 && s.lo <= merged[n-1].hi {
			merged[n-1].hi = max(merged[n-1].hi, s.hi)
			continue
		}
		merged = append(merged, s)
	}
	out := make([]Patch, 0, len(merged))
	for _, m := range merged {
		data := append([]byte(nil), b[m.lo:m.hi]...)
		var whys []string
		for _, w := range writes {
			lo, hi := w.Offset, w.Offset+int64(len(w.Data))
			if lo >= m.lo && hi <= m.hi {
				copy(data[lo-m.lo:], w.Data)
				if len(whys) == 0 || whys[len(whys)-1] != w.Why {
					whys = append(whys, w.Why)
				}
			}
		}
		out = append(out, Patch{Offset: m.lo, Data: data, Why: strings.Join(whys, "; ")})
	}
	return out
}

// reload makes nb (a private copy) the hive's bytes and re-indexes it.
func (h *Hive) reload(nb []byte) error {
	nh, err := Open(nb)
	if err != nil {
		return err
	}
	*h = *nh
	return nil
}

// encodeName encodes a key or value name as Latin-1 when it can
// ("compressed", what Windows does) or UTF-16LE, and returns the length
// Windows counts for the max-name-length fields (UTF-16 bytes).
func encodeName(name string) (b []byte, compressed bool, utf16Len int) {
	u := utf16.Encode([]rune(name))
	compressed = true
	for _, c := range u {
		if c > 0xff {
			compressed = false
			break
		}
	}
	if compressed {
		b = make([]byte, len(u))
		for i, c := range u {
			b[i] = byte(c)
		}
	} else {
		b = make([]byte, 2*len(u))
		for i, c := range u {
			binary.LittleEndian.PutUint16(b[2*i:], c)
		}
	}
	return b, compressed, 2 * len(u)
}

// SetDWORD sets the REG_DWORD value valueName ("" = default value) of the
// key at keyPath to v and returns the patches that do it.
//
// An existing REG_DWORD is patched in place (4 bytes: in the vk's data
// offset field when inline, else in its data cell). A missing value is
// added in free cells of the existing hive bins: a new vk cell, and the
// new entry goes into the key's value list cell when it has spare room,
// else into a new list cell (the old one is marked free); the nk's value
// count, value list offset and max name/data lengths are updated. If the
// free cells cannot hold that, it returns ErrNoRoom. A value of another
// type returns ErrUnsupported.
//
// The patches are relative to the hive as left by the previous edits
// made through h: h keeps a private edited copy, so edits can be chained;
// apply all patches of all calls, in order.
func (h *Hive) SetDWORD(keyPath, valueName string, v uint32) ([]Patch, error) {
	k, err := h.Key(keyPath)
	if err != nil {
		return nil, err
	}
	data := binary.LittleEndian.AppendUint32(nil, v)
	what := fmt.Sprintf(`%s\%s = %d (REG_DWORD)`, keyPath, displayName(valueName), v)
	val, err := k.Value(valueName)
	switch {
	case err == nil:
		return h.overwrite(val, RegDWORD, data, what)
	case errorsIsNotFound(err):
		return h.addInlineValue(k, valueName, RegDWORD, data, what)
	default:
		return nil, err
	}
}

func displayName(name string) string {
	if name == "" {
		return "(default)"
	}
	return name
}

// overwrite patches the data of an existing value of the same type and
// size in place.
func (h *Hive) overwrite(val *Value, typ uint32, data []byte, what string) ([]Patch, error) {
	if t := val.Type(); t != typ {
		return nil, fmt.Errorf("%w: %s: the existing value has type %s", ErrUnsupported, what, TypeName(t))
	}
	if val.Size() != uint32(len(data)) {
		return nil, fmt.Errorf("%w: %s: the existing value has %d bytes, not %d", ErrUnsupported, what, val.Size(), len(data))
	}
	_, at, err := val.data()
	if err != nil {
		return nil, err
	}
	if at < 0 {
		return nil, fmt.Errorf("%w: %s: data not in one place", ErrUnsupported, what)
	}
	e := h.newEdit()
	e.writes = append(e.writes, Patch{Offset: at, Data: data, Why: what + ": value data"})
	return e.finish()
}

// addInlineValue adds a value of at most 4 bytes (stored in the vk) to k.
func (h *Hive) addInlineValue(k *Key, name string, typ uint32, data []byte, what string) ([]Patch, error) {
	nameB, compressed, u16len := encodeName(name)
	if u16len > 2*16383 {
		return nil, fmt.Errorf("%w: %s: value name longer than 16383 characters", ErrUnsupported, what)
	}
	if len(data) > 4 {
		return nil, fmt.Errorf("%w: %s: only inline data is supported", ErrUnsupported, what)
	}
	n := le32(k.nk, nkValueCount)
	oldList := le32(k.nk, nkValueList)
	var listCell []byte
	if n > 0 {
		var err error
		if listCell, err = h.cell(oldList); err != nil {
			return nil, fmt.Errorf("value list of %q: %w", k.name, err)
		}
		if uint64(n)*4 > uint64(len(listCell)) {
			return nil, fmt.Errorf("%w: value list of %q: %d entries beyond its cell", ErrCorrupt, k.name, n)
		}
	}
	e := h.newEdit()

	// The vk cell.
	vkSize := align8(4 + vkName + len(nameB))
	vkOff, err := e.alloc(vkSize, what+": vk cell")
	if err != nil {
		return nil, err
	}
	vk := make([]byte, vkSize)
	binary.LittleEndian.PutUint32(vk[0:], uint32(-int32(vkSize)))
	copy(vk[4:], "vk")
	binary.LittleEndian.PutUint16(vk[4+vkNameLen:], uint16(len(nameB)))
	binary.LittleEndian.PutUint32(vk[4+vkDataSize:], dataInline|uint32(len(data)))
	copy(vk[4+vkDataOff:], data)
	binary.LittleEndian.PutUint32(vk[4+vkType:], typ)
	if compressed && len(nameB) > 0 {
		binary.LittleEndian.PutUint16(vk[4+vkFlags:], valueCompName)
	}
	copy(vk[4+vkName:], nameB)
	e.write(vkOff, vk, what+": vk cell")

	// The value list.
	if n > 0 && uint64(n+1)*4 <= uint64(len(listCell)) {
		e.put32(oldList+4+4*n, vkOff, what+": value list entry (spare room in the list cell)")
	} else {
		listSize := align8(4 + 4*int(n+1))
		listOff, err := e.alloc(listSize, what+": value list cell")
		if err != nil {
			return nil, err
		}
		list := make([]byte, listSize)
		binary.LittleEndian.PutUint32(list, uint32(-int32(listSize)))
		if n > 0 {
			copy(list[4:], listCell[:4*n])
		}
		binary.LittleEndian.PutUint32(list[4+4*n:], vkOff)
		e.write(listOff, list, what+": new value list cell")
		e.put32(k.off+4+nkValueList, listOff, what+": nk value list offset")
		if n > 0 {
			e.release(oldList, what+": free the old value list cell")
		}
	}
	e.put32(k.off+4+nkValueCount, n+1, what+": nk value count")
	if uint32(u16len) > le32(k.nk, nkMaxValName) {
		e.put32(k.off+4+nkMaxValName, uint32(u16len), what+": nk max value name length")
	}
	if uint32(len(data)) > le32(k.nk, nkMaxValData) {
		e.put32(k.off+4+nkMaxValData, uint32(len(data)), what+": nk max value data length")
	}
	return e.finish()
}

// SetMultiString replaces the strings of an existing REG_MULTI_SZ value
// in place. The new data must not be longer than the old (removing a name
// from a filter list, say): a longer value needs a new cell, which is
// ErrNoRoom here. The bytes the value no longer uses are zeroed.
func (h *Hive) SetMultiString(keyPath, valueName string, values []string) ([]Patch, error) {
	k, err := h.Key(keyPath)
	if err != nil {
		return nil, err
	}
	val, err := k.Value(valueName)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf(`%s\%s = %q (REG_MULTI_SZ)`, keyPath, displayName(valueName), values)
	if t := val.Type(); t != RegMultiSZ {
		return nil, fmt.Errorf("%w: %s: the existing value has type %s", ErrUnsupported, what, TypeName(t))
	}
	var data []byte
	for _, s := range append(values, "") { // the list ends with an empty string
		for _, u := range utf16.Encode([]rune(s)) {
			data = binary.LittleEndian.AppendUint16(data, u)
		}
		data = append(data, 0, 0)
	}
	old := val.Size()
	if uint32(len(data)) > old {
		return nil, fmt.Errorf("%w: %s: %d bytes do not fit in the value's %d", ErrNoRoom, what, len(data), old)
	}
	if val.inline() {
		return nil, fmt.Errorf("%w: %s: inline data", ErrUnsupported, what)
	}
	_, at, err := val.data()
	if err != nil {
		return nil, err
	}
	if at < 0 {
		return nil, fmt.Errorf("%w: %s: data not in one place", ErrUnsupported, what)
	}
	e := h.newEdit()
	e.writes = append(e.writes, Patch{Offset: at, Data: append(data, make([]byte, int(old)-len(data))...), Why: what + ": value data"})
	e.put32(val.off+4+vkDataSize, uint32(len(data)), what+": value size")
	return e.finish()
}

package regf

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
)

const (
	skRefCount  = 12 // in the sk cell data
	maxKeyName  = 255
	maxLeafKeys = 0xffff
)

// CreateKey creates the key at path (`\`-separated, relative to the root)
// and any missing parent, inside free cells of the existing bins, and
// returns the patches. An existing key gives no patches and no error.
//
// Each new key gets an nk cell (compressed name, the parent's timestamp
// and security cell, whose reference count is incremented) and an entry
// in its parent's subkey list, which Windows keeps sorted by upcased name
// and searches by binary search and by hash: the entry is inserted in
// order into the lf/lh/li leaf (under an ri, the leaf whose range covers
// the name), in place when the leaf cell has room, else into a new leaf
// cell (the old one is freed). The parent's subkey count, list offset and
// maximum subkey name length are updated. Names must be printable ASCII
// (ErrUnsupported otherwise): the lh hash and the sort order use Windows'
// upcase table, which only matches simple folding for ASCII. When the
// free cells are too small it returns ErrNoRoom and changes nothing.
func (h *Hive) CreateKey(path string) ([]Patch, error) {
	parts := splitPath(path)
	for _, p := range parts {
		if err := checkNewKeyName(p); err != nil {
			return nil, fmt.Errorf("creating key %q: %w", path, err)
		}
	}
	work := *h // edits go to a copy until every level succeeded
	k, err := work.Root()
	if err != nil {
		return nil, err
	}
	var writes []Patch
	for i, p := range parts {
		sub, err := k.Subkey(p)
		if err == nil {
			k = sub
			continue
		}
		if !errorsIsNotFound(err) {
			return nil, err
		}
		at := strings.Join(parts[:i+1], `\`)
		ps, err := work.addSubkey(k, p, "create key "+at)
		if err != nil {
			return nil, err
		}
		writes = append(writes, ps...)
		if k, err = work.Key(at); err != nil {
			return nil, fmt.Errorf("regf: internal error, created key %q not found: %w", at, err)
		}
	}
	if len(writes) == 0 {
		return nil, nil
	}
	ps := mergePatches(h.b, writes)
	*h = work
	return ps, nil
}

func checkNewKeyName(name string) error {
	if len(name) > maxKeyName {
		return fmt.Errorf("%w: key name of %d characters (at most %d)", ErrUnsupported, len(name), maxKeyName)
	}
	for _, c := range []byte(name) {
		if c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: key name %q: only printable ASCII names can be created", ErrUnsupported, name)
		}
	}
	return nil
}

// upcase returns name as upcased UTF-16 code units, the form Windows
// compares subkey names in.
func upcase(name string) []uint16 {
	u := utf16.Encode([]rune(name))
	for i, c := range u {
		if c < 0xd800 || c > 0xdfff {
			if r := unicode.ToUpper(rune(c)); r <= 0xffff {
				u[i] = uint16(r)
			}
		}
	}
	return u
}

// compareNames orders names as Windows sorts subkey lists.
func compareNames(a, b string) int {
	ua, ub := upcase(a), upcase(b)
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			if ua[i] < ub[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(ua) < len(ub):
		return -1
	case len(ua) > len(ub):
		return 1
	}
	return 0
}

// lhHash is the lh-record hash: h = 37*h + upcased UTF-16 unit.
func lhHash(name string) uint32 {
	var x uint32
	for _, c := range upcase(name) {
		x = x*37 + uint32(c)
	}
	return x
}

// lfHint is the lf-record hint: the first four characters of the name.
func lfHint(name string) []byte {
	hint := make([]byte, 4)
	copy(hint, name)
	return hint
}

// addSubkey adds the (new, ASCII) subkey name to parent in one edit.
func (h *Hive) addSubkey(parent *Key, name, what string) ([]Patch, error) {
	skOff := le32(parent.nk, nkSecurity)
	sk, err := h.cellSig(skOff, "sk")
	if err != nil {
		return nil, fmt.Errorf("security cell of %q: %w", parent.name, err)
	}
	if len(sk) < skRefCount+4 {
		return nil, fmt.Errorf("%w: security cell at %#x too short", ErrCorrupt, skOff)
	}
	n := le32(parent.nk, nkSubkeyCount)
	listOff := le32(parent.nk, nkSubkeyList)
	e := h.newEdit()

	nkSize := align8(4 + nkName + len(name))
	nkOff, err := e.alloc(nkSize, what+": nk cell")
	if err != nil {
		return nil, err
	}
	nk := make([]byte, nkSize)
	le := binary.LittleEndian
	le.PutUint32(nk, uint32(-int32(nkSize)))
	d := nk[4:]
	copy(d, "nk")
	le.PutUint16(d[nkFlags:], KeyCompName)
	copy(d[4:12], parent.nk[4:12]) // last written time: the parent's
	le.PutUint32(d[nkParent:], parent.off)
	le.PutUint32(d[nkSubkeyList:], noOffset)
	le.PutUint32(d[nkSubkeyList+4:], noOffset) // volatile list
	le.PutUint32(d[nkValueList:], noOffset)
	le.PutUint32(d[nkSecurity:], skOff)
	le.PutUint32(d[nkClass:], noOffset)
	le.PutUint16(d[nkNameLen:], uint16(len(name)))
	copy(d[nkName:], name)
	e.write(nkOff, nk, what+": nk cell")
	e.put32(skOff+4+skRefCount, le32(sk, skRefCount)+1, what+": security cell reference count")

	if n == 0 {
		var lhSize uint32 = 16
		lh := make([]byte, lhSize)
		le.PutUint32(lh, uint32(-int32(lhSize)))
		copy(lh[4:], "lh")
		le.PutUint16(lh[6:], 1)
		le.PutUint32(lh[8:], nkOff)
		le.PutUint32(lh[12:], lhHash(name))
		off, err := e.alloc(lhSize, what+": subkey list")
		if err != nil {
			return nil, err
		}
		e.write(off, lh, what+": new lh subkey list")
		e.put32(parent.off+4+nkSubkeyList, off, what+": parent's subkey list offset")
	} else {
		top, err := h.cell(listOff)
		if err != nil {
			return nil, fmt.Errorf("subkeys of %q: %w", parent.name, err)
		}
		if len(top) < 4 {
			return nil, fmt.Errorf("%w: subkey list at %#x too short", ErrCorrupt, listOff)
		}
		if string(top[:2]) == "ri" {
			m := int(le16(top, 2))
			if m == 0 || 4+4*m > len(top) {
				return nil, fmt.Errorf("%w: ri list at %#x with %d entries", ErrCorrupt, listOff, m)
			}
			i := m - 1
			for j := 0; j < m; j++ {
				last, err := h.leafLastName(le32(top, 4+4*j))
				if err != nil {
					return nil, err
				}
				if compareNames(last, name) > 0 {
					i = j
					break
				}
			}
			leaf := le32(top, 4+4*i)
			nl, err := h.insertIntoLeaf(e, leaf, nkOff, name, what)
			if err != nil {
				return nil, err
			}
			if nl != leaf {
				e.put32(listOff+4+4+4*uint32(i), nl, what+": ri entry for the moved leaf")
			}
		} else {
			nl, err := h.insertIntoLeaf(e, listOff, nkOff, name, what)
			if err != nil {
				return nil, err
			}
			if nl != listOff {
				e.put32(parent.off+4+nkSubkeyList, nl, what+": parent's subkey list offset")
			}
		}
	}
	e.put32(parent.off+4+nkSubkeyCount, n+1, what+": parent's subkey count")
	if u16 := uint16(2 * len(name)); u16 > le16(parent.nk, nkMaxSubName) {
		e.write(parent.off+4+nkMaxSubName, binary.LittleEndian.AppendUint16(nil, u16), what+": parent's max subkey name length")
	}
	return e.finish()
}

// leafLastName returns the name of the last key of an lf/lh/li leaf.
func (h *Hive) leafLastName(off uint32) (string, error) {
	var offs []uint32
	if err := h.readList(off, maxListDepth, ^uint32(0), &offs); err != nil { // one leaf: its cell bounds it
		return "", err
	}
	if len(offs) == 0 {
		return "", fmt.Errorf("%w: empty subkey list at %#x", ErrCorrupt, off)
	}
	c, err := h.cellSig(offs[len(offs)-1], "nk")
	if err != nil {
		return "", err
	}
	k, err := parseKey(h, offs[len(offs)-1], c)
	if err != nil {
		return "", err
	}
	return k.name, nil
}

// insertIntoLeaf inserts the entry for the nk at nkOff, named name, into
// the lf/lh/li leaf at off, in sorted position. It rewrites the leaf in
// place when its cell has room, else writes a new leaf cell and frees the
// old one; it returns the leaf's (possibly new) offset.
func (h *Hive) insertIntoLeaf(e *edit, off, nkOff uint32, name, what string) (uint32, error) {
	c, err := h.cell(off)
	if err != nil {
		return 0, err
	}
	if len(c) < 4 {
		return 0, fmt.Errorf("%w: subkey list at %#x too short", ErrCorrupt, off)
	}
	sig := string(c[:2])
	stride := 8
	switch sig {
	case "lf", "lh":
	case "li":
		stride = 4
	default:
		return 0, fmt.Errorf("%w: cell at %#x is not a subkey list leaf (%q)", ErrCorrupt, off, c[:2])
	}
	n := int(le16(c, 2))
	if 4+n*stride > len(c) {
		return 0, fmt.Errorf("%w: %s list at %#x: %d entries beyond its cell", ErrCorrupt, sig, off, n)
	}
	if n+1 > maxLeafKeys {
		return 0, fmt.Errorf("%w: %s: subkey list leaf full", ErrUnsupported, what)
	}
	pos := n
	for i := 0; i < n; i++ {
		eo := le32(c, 4+i*stride)
		sc, err := h.cellSig(eo, "nk")
		if err != nil {
			return 0, err
		}
		sk, err := parseKey(h, eo, sc)
		if err != nil {
			return 0, err
		}
		if cmp := compareNames(sk.name, name); cmp == 0 {
			return 0, fmt.Errorf("%w: subkey %q already listed", ErrCorrupt, name)
		} else if cmp > 0 {
			pos = i
			break
		}
	}
	entry := binary.LittleEndian.AppendUint32(nil, nkOff)
	switch sig {
	case "lh":
		entry = binary.LittleEndian.AppendUint32(entry, lhHash(name))
	case "lf":
		entry = append(entry, lfHint(name)...)
	}
	body := make([]byte, 0, 4+(n+1)*stride)
	body = append(body, sig...)
	body = binary.LittleEndian.AppendUint16(body, uint16(n+1))
	body = append(body, c[4:4+pos*stride]...)
	body = append(body, entry...)
	body = append(body, c[4+pos*stride:4+n*stride]...)
	if len(body) <= len(c) {
		e.write(off+4, body, what+": "+sig+" subkey list entry (room in the list cell)")
		return off, nil
	}
	size := align8(4 + len(body))
	nl, err := e.alloc(size, what+": "+sig+" subkey list")
	if err != nil {
		return 0, err
	}
	cell := make([]byte, size)
	binary.LittleEndian.PutUint32(cell, uint32(-int32(size)))
	copy(cell[4:], body)
	e.write(nl, cell, what+": new "+sig+" subkey list cell")
	e.release(off, what+": free the old subkey list cell")
	return nl, nil
}

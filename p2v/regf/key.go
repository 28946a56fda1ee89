package regf

import (
	"fmt"
	"strings"
	"unicode/utf16"
)

// nk record layout (offsets within the cell data, after the size field).
const (
	nkFlags       = 2
	nkParent      = 16
	nkSubkeyCount = 20
	nkSubkeyList  = 28
	nkValueCount  = 36
	nkValueList   = 40
	nkSecurity    = 44
	nkClass       = 48
	nkMaxSubName  = 52
	nkMaxValName  = 60
	nkMaxValData  = 64
	nkNameLen     = 72
	nkClassLen    = 74
	nkName        = 76

	// KeyCompName marks an nk name stored as Latin-1 ("compressed").
	KeyCompName = 0x0020
)

// maxListDepth bounds ri nesting: an ri points to lf/lh/li lists only.
const maxListDepth = 1

// Key is a registry key (an nk cell).
type Key struct {
	h    *Hive
	off  uint32 // bins offset of the nk cell
	nk   []byte
	name string
}

func parseKey(h *Hive, off uint32, nk []byte) (*Key, error) {
	if len(nk) < nkName || string(nk[:2]) != "nk" {
		return nil, fmt.Errorf("%w: nk cell at %#x too short", ErrCorrupt, off)
	}
	n := int(le16(nk, nkNameLen))
	if n > len(nk)-nkName {
		return nil, fmt.Errorf("%w: nk cell at %#x: name length %d beyond the cell", ErrCorrupt, off, n)
	}
	name, err := decodeName(nk[nkName:nkName+n], le16(nk, nkFlags)&KeyCompName != 0)
	if err != nil {
		return nil, fmt.Errorf("nk cell at %#x: %w", off, err)
	}
	return &Key{h: h, off: off, nk: nk, name: name}, nil
}

// decodeName decodes a Latin-1 ("compressed") or UTF-16LE name.
func decodeName(b []byte, compressed bool) (string, error) {
	if compressed {
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r), nil
	}
	if len(b)%2 != 0 {
		return "", fmt.Errorf("%w: UTF-16 name of odd length %d", ErrCorrupt, len(b))
	}
	return decodeUTF16(b), nil
}

func decodeUTF16(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = le16(b, 2*i)
	}
	return string(utf16.Decode(u))
}

// Name returns the key's name (the root key's name is whatever the hive
// stores, often "ROOT" or a CMI-CreateHive GUID).
func (k *Key) Name() string { return k.name }

// Flags returns the nk flags (0x20 = compressed name, 0x04 = hive root, ...).
func (k *Key) Flags() uint16 { return le16(k.nk, nkFlags) }

// Offset returns the offset of the key's nk cell in the hive file.
func (k *Key) Offset() int64 { return fileOffset(k.off) }

// SubkeyCount returns the number of (non-volatile) subkeys the nk claims.
func (k *Key) SubkeyCount() uint32 { return le32(k.nk, nkSubkeyCount) }

// ValueCount returns the number of values the nk claims.
func (k *Key) ValueCount() uint32 { return le32(k.nk, nkValueCount) }

// Class returns the key's class name ("" if none).
func (k *Key) Class() (string, error) {
	off, n := le32(k.nk, nkClass), int(le16(k.nk, nkClassLen))
	if off == noOffset || n == 0 {
		return "", nil
	}
	c, err := k.h.cell(off)
	if err != nil {
		return "", fmt.Errorf("class of key %q: %w", k.name, err)
	}
	if n > len(c) {
		return "", fmt.Errorf("%w: class of key %q: length %d beyond its cell", ErrCorrupt, k.name, n)
	}
	return decodeUTF16(c[:n&^1]), nil
}

// subkeyOffsets returns the nk offsets listed by the key's subkey list.
func (k *Key) subkeyOffsets() ([]uint32, error) {
	n := le32(k.nk, nkSubkeyCount)
	off := le32(k.nk, nkSubkeyList)
	if n == 0 {
		return nil, nil
	}
	if off == noOffset {
		return nil, fmt.Errorf("%w: key %q has %d subkeys but no list", ErrCorrupt, k.name, n)
	}
	// Each subkey is an nk cell of its own: the bins bound the count.
	if uint64(n) > uint64(len(k.h.bins))/minNKCell {
		return nil, fmt.Errorf("%w: key %q (nk cell at %#x) claims %d subkeys, more than %d bytes of hive bins hold",
			ErrCorrupt, k.name, k.off, n, len(k.h.bins))
	}
	var out []uint32
	if err := k.h.readList(off, 0, n, &out); err != nil {
		return nil, fmt.Errorf("subkeys of %q: %w", k.name, err)
	}
	if uint32(len(out)) != n {
		return nil, fmt.Errorf("%w: key %q claims %d subkeys, its lists hold %d", ErrCorrupt, k.name, n, len(out))
	}
	return out, nil
}

// minNKCell is the smallest cell an nk record fits in: size field and
// fixed fields, rounded up to the cell alignment.
const minNKCell = (4 + nkName + 7) &^ 7

// readList appends the nk offsets of the lf/lh/li/ri list at off, at
// most limit in all: an ri list naming one big list many times must not
// multiply it.
func (h *Hive) readList(off uint32, depth int, limit uint32, out *[]uint32) error {
	c, err := h.cell(off)
	if err != nil {
		return err
	}
	if len(c) < 4 {
		return fmt.Errorf("%w: subkey list at %#x too short", ErrCorrupt, off)
	}
	n := int(le16(c, 2))
	sig := string(c[:2])
	stride := 4
	switch sig {
	case "lf", "lh":
		stride = 8
	case "li":
	case "ri":
		if depth >= maxListDepth {
			return fmt.Errorf("%w: nested ri list at %#x", ErrCorrupt, off)
		}
	default:
		return fmt.Errorf("%w: cell at %#x is not a subkey list (%q)", ErrCorrupt, off, c[:2])
	}
	if 4+n*stride > len(c) {
		return fmt.Errorf("%w: %s list at %#x: %d entries beyond its cell", ErrCorrupt, sig, off, n)
	}
	for i := 0; i < n; i++ {
		e := le32(c, 4+i*stride)
		if sig == "ri" {
			if err := h.readList(e, depth+1, limit, out); err != nil {
				return err
			}
			continue
		}
		if uint32(len(*out)) >= limit {
			return fmt.Errorf("%w: %s list at %#x holds more than the %d subkeys its key claims", ErrCorrupt, sig, off, limit)
		}
		*out = append(*out, e)
	}
	return nil
}

// Subkeys returns the key's subkeys in stored (sorted) order.
func (k *Key) Subkeys() ([]*Key, error) {
	offs, err := k.subkeyOffsets()
	if err != nil {
		return nil, err
	}
	keys := make([]*Key, 0, len(offs))
	for _, o := range offs {
		c, err := k.h.cellSig(o, "nk")
		if err != nil {
			return nil, fmt.Errorf("subkey of %q: %w", k.name, err)
		}
		sk, err := parseKey(k.h, o, c)
		if err != nil {
			return nil, err
		}
		keys = append(keys, sk)
	}
	return keys, nil
}

// Subkey returns the direct subkey called name (case-insensitive).
func (k *Key) Subkey(name string) (*Key, error) {
	subs, err := k.Subkeys()
	if err != nil {
		return nil, err
	}
	for _, s := range subs {
		if equalFold(s.name, name) {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w: key %q has no subkey %q", ErrNotFound, k.name, name)
}

// equalFold compares registry names case-insensitively: Windows upcases
// both sides with its Unicode table; simple folding is close enough.
func equalFold(a, b string) bool { return strings.EqualFold(a, b) }

// splitPath splits a `\`-separated path, dropping empty elements.
func splitPath(path string) []string {
	var out []string
	for _, p := range strings.Split(path, `\`) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Key returns the key at path, `\`-separated and relative to the root key
// (e.g. `ControlSet001\Services\pvscsi`); "" is the root key.
func (h *Hive) Key(path string) (*Key, error) {
	k, err := h.Root()
	if err != nil {
		return nil, err
	}
	for _, p := range splitPath(path) {
		if k, err = k.Subkey(p); err != nil {
			if errorsIsNotFound(err) {
				return nil, fmt.Errorf("%w: key %q", ErrNotFound, path)
			}
			return nil, err
		}
	}
	return k, nil
}

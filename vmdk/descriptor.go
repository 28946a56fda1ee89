package vmdk

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/standbykit/standbykit/internal/hosttext"
)

// Create types this package writes or reads.
const (
	CreateStreamOptimized  = "streamOptimized"
	CreateMonolithicSparse = "monolithicSparse"
	CreateTwoGbSparse      = "twoGbMaxExtentSparse"
	CreateMonolithicFlat   = "monolithicFlat"
	CreateVMFS             = "vmfs"
	CreateVMFSSparse       = "vmfsSparse"
)

// Extent types of descriptor extent lines.
const (
	ExtentFlat       = "FLAT"
	ExtentSparse     = "SPARSE"
	ExtentZero       = "ZERO"
	ExtentVMFS       = "VMFS"
	ExtentVMFSSparse = "VMFSSPARSE"
)

// NoParent is the parentCID of a disk without a parent.
const NoParent uint32 = 0xffffffff

// maxDescriptor bounds a stand-alone descriptor: real ones are well under
// 2 KiB; anything larger is not a descriptor.
const maxDescriptor = 64 << 10

// Descriptor is a VMDK text descriptor: the header keys, the extents and
// the disk database. Keys this type does not model are kept in DDB or
// Other so that a parsed descriptor writes back with them.
type Descriptor struct {
	Version            int
	Encoding           string
	CID                uint32
	ParentCID          uint32
	CreateType         string
	ParentFileNameHint string
	Extents            []Extent
	// Other holds further header keys (isNativeSnapshot, changeTrackPath…)
	// in file order.
	Other []KeyValue
	// DDB holds the disk database (ddb.* keys, without the prefix removed)
	// in file order.
	DDB []KeyValue
}

// KeyValue is one key = "value" line.
type KeyValue struct {
	Key, Value string
}

// Extent is one extent line: `RW 2048 VMFS "disk-flat.vmdk"`.
type Extent struct {
	Access  string // RW, RDONLY or NOACCESS
	Sectors int64
	Type    string
	File    string // relative to the descriptor's directory; empty for ZERO
	Offset  int64  // in sectors, FLAT extents only
}

// Capacity returns the disk size in bytes: the sum of the extents.
func (d *Descriptor) Capacity() int64 {
	var n int64
	for _, e := range d.Extents {
		n += e.Sectors * SectorSize
	}
	return n
}

// Get returns a ddb value (key with its "ddb." prefix) or "".
func (d *Descriptor) Get(key string) string {
	for _, kv := range d.DDB {
		if strings.EqualFold(kv.Key, key) {
			return kv.Value
		}
	}
	return ""
}

// Set sets a ddb value, replacing an existing one.
func (d *Descriptor) Set(key, value string) {
	for i, kv := range d.DDB {
		if strings.EqualFold(kv.Key, key) {
			d.DDB[i].Value = value
			return
		}
	}
	d.DDB = append(d.DDB, KeyValue{key, value})
}

// SetCID sets the CID and the ddb.longContentID that VMware keeps
// consistent with it (its last eight hex digits are the CID).
func (d *Descriptor) SetCID(cid uint32) {
	d.CID = cid
	var b [12]byte
	_, _ = rand.Read(b[:])
	d.Set("ddb.longContentID", fmt.Sprintf("%s%08x", hex.EncodeToString(b[:]), cid))
}

// NewCID returns a random content ID, never one of the values VMware gives
// a meaning (ffffffff, fffffffe) nor 0.
func NewCID() uint32 {
	for {
		var b [4]byte
		_, _ = rand.Read(b[:])
		cid := binary.LittleEndian.Uint32(b[:])
		if cid != 0 && cid < 0xfffffffe {
			return cid
		}
	}
}

// NewUUID returns a random ddb.uuid value in VMware's spelling
// ("60 00 c2 99 d3 f5 dc ad-9e 25 3e 89 48 2c 3f de").
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	var s strings.Builder
	for i, c := range b {
		if i > 0 {
			if i == 8 {
				s.WriteByte('-')
			} else {
				s.WriteByte(' ')
			}
		}
		fmt.Fprintf(&s, "%02x", c)
	}
	return s.String()
}

// SCSIGeometry returns the ddb.geometry values ESXi writes for a SCSI disk
// of that capacity in bytes: 255 heads, 63 sectors.
func SCSIGeometry(capacity int64) (cylinders, heads, sectors int64) {
	cylinders = capacity / SectorSize / (255 * 63)
	if cylinders > 65535 {
		cylinders = 65535
	}
	return cylinders, 255, 63
}

// ParseDescriptor parses descriptor text (stand-alone or embedded, NUL
// padding allowed). Keys are matched without regard to case or spacing,
// as VMware does.
func ParseDescriptor(b []byte) (*Descriptor, error) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) > maxDescriptor {
		return nil, corruptf("descriptor of %d bytes", len(b))
	}
	d := &Descriptor{ParentCID: NoParent}
	seenVersion := false
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		if e, ok, err := parseExtentLine(line); ok {
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrCorrupt, n+1, err)
			}
			d.Extents = append(d.Extents, e)
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, corruptf("descriptor line %d: %q is neither key=value nor an extent", n+1, clip(line))
		}
		key = strings.TrimSpace(key)
		value = unquote(strings.TrimSpace(value))
		if !seenVersion && !strings.EqualFold(key, "version") {
			return nil, corruptf("descriptor line %d: %q before version", n+1, clip(key))
		}
		var err error
		switch strings.ToLower(key) {
		case "version":
			seenVersion = true
			d.Version, err = strconv.Atoi(value)
			if err == nil && (d.Version < 1 || d.Version > 3) {
				err = fmt.Errorf("version %d", d.Version)
			}
		case "encoding":
			d.Encoding = value
		case "cid":
			d.CID, err = parseHex32(value)
		case "parentcid":
			d.ParentCID, err = parseHex32(value)
		case "createtype":
			d.CreateType = value
		case "parentfilenamehint":
			d.ParentFileNameHint = value
		default:
			if strings.HasPrefix(strings.ToLower(key), "ddb.") {
				d.DDB = append(d.DDB, KeyValue{key, value})
			} else {
				d.Other = append(d.Other, KeyValue{key, value})
			}
		}
		if err != nil {
			return nil, corruptf("descriptor line %d: %s: %v", n+1, clip(key), err)
		}
	}
	if !seenVersion {
		return nil, corruptf("not a descriptor: no version line")
	}
	if d.CreateType == "" {
		return nil, corruptf("descriptor without createType")
	}
	if len(d.Extents) == 0 {
		return nil, corruptf("descriptor without extents")
	}
	return d, nil
}

func parseHex32(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 16, 32)
	return uint32(v), err
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// clip bounds a piece of a descriptor quoted in an error: the descriptor
// may come from a host or a damaged file.
func clip(s string) string { return hosttext.Clip(s, 40+len("…")) }

// parseExtentLine recognizes `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`.
func parseExtentLine(line string) (Extent, bool, error) {
	access, rest, _ := strings.Cut(line, " ")
	switch strings.ToUpper(access) {
	case "RW", "RDONLY", "NOACCESS":
	default:
		return Extent{}, false, nil
	}
	e := Extent{Access: strings.ToUpper(access), Offset: 0}
	rest = strings.TrimSpace(rest)
	size, rest, _ := strings.Cut(rest, " ")
	var err error
	if e.Sectors, err = strconv.ParseInt(size, 10, 64); err != nil || e.Sectors <= 0 || e.Sectors > 1<<40 {
		return e, true, fmt.Errorf("extent size %q", clip(size))
	}
	rest = strings.TrimSpace(rest)
	typ, rest, _ := strings.Cut(rest, " ")
	e.Type = strings.ToUpper(typ)
	rest = strings.TrimSpace(rest)
	if e.Type == ExtentZero {
		return e, true, nil
	}
	if len(rest) < 2 || rest[0] != '"' {
		return e, true, fmt.Errorf("extent without a quoted file name")
	}
	end := strings.IndexByte(rest[1:], '"')
	if end < 0 {
		return e, true, fmt.Errorf("unterminated extent file name")
	}
	e.File = rest[1 : 1+end]
	if e.File == "" {
		return e, true, fmt.Errorf("empty extent file name")
	}
	if off := strings.TrimSpace(rest[2+end:]); off != "" {
		if e.Offset, err = strconv.ParseInt(off, 10, 64); err != nil || e.Offset < 0 || e.Offset > 1<<40 {
			return e, true, fmt.Errorf("extent offset %q", clip(off))
		}
	}
	return e, true, nil
}

// MarshalText writes the descriptor in the spelling that both VMware and
// qemu accept: `key=value` header lines with CID before parentCID, extent
// lines, then `ddb.key = "value"`.
func (d *Descriptor) MarshalText() ([]byte, error) {
	if len(d.Extents) == 0 || d.CreateType == "" {
		return nil, fmt.Errorf("%w: descriptor needs a createType and extents", ErrInvalidInput)
	}
	version := d.Version
	if version == 0 {
		version = 1
	}
	encoding := d.Encoding
	if encoding == "" {
		encoding = "UTF-8"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Disk DescriptorFile\nversion=%d\nencoding=%q\nCID=%08x\nparentCID=%08x\n", version, encoding, d.CID, d.ParentCID)
	for _, kv := range d.Other {
		fmt.Fprintf(&b, "%s=%q\n", kv.Key, kv.Value)
	}
	fmt.Fprintf(&b, "createType=%q\n", d.CreateType)
	if d.ParentFileNameHint != "" {
		fmt.Fprintf(&b, "parentFileNameHint=%q\n", d.ParentFileNameHint)
	}
	b.WriteString("\n# Extent description\n")
	for _, e := range d.Extents {
		if strings.ContainsAny(e.File, "\"\n\r\x00") {
			return nil, fmt.Errorf("%w: extent file name %q", ErrInvalidInput, e.File)
		}
		access := e.Access
		if access == "" {
			access = "RW"
		}
		fmt.Fprintf(&b, "%s %d %s", access, e.Sectors, e.Type)
		if e.Type != ExtentZero {
			fmt.Fprintf(&b, " %q", e.File)
		}
		if e.Type == ExtentFlat {
			fmt.Fprintf(&b, " %d", e.Offset)
		}
		b.WriteByte('\n')
	}
	b.WriteString("\n# The Disk Data Base\n#DDB\n\n")
	for _, kv := range d.DDB {
		if strings.ContainsAny(kv.Value, "\"\n\r\x00") {
			return nil, fmt.Errorf("%w: ddb value %q", ErrInvalidInput, kv.Value)
		}
		fmt.Fprintf(&b, "%s = \"%s\"\n", kv.Key, kv.Value)
	}
	return b.Bytes(), nil
}

// BaseDescriptor returns the descriptor of a base disk of capacity bytes
// held in one extent of the given type and file, with a new CID, uuid and
// SCSI geometry.
func BaseDescriptor(createType, extentType, file string, capacity int64, adapter string) *Descriptor {
	if adapter == "" {
		adapter = "lsilogic"
	}
	d := &Descriptor{
		Version:    1,
		Encoding:   "UTF-8",
		ParentCID:  NoParent,
		CreateType: createType,
		Extents:    []Extent{{Access: "RW", Sectors: capacity / SectorSize, Type: extentType, File: file}},
	}
	c, h, s := SCSIGeometry(capacity)
	d.Set("ddb.adapterType", adapter)
	d.Set("ddb.geometry.cylinders", strconv.FormatInt(c, 10))
	d.Set("ddb.geometry.heads", strconv.FormatInt(h, 10))
	d.Set("ddb.geometry.sectors", strconv.FormatInt(s, 10))
	d.SetCID(NewCID())
	d.Set("ddb.uuid", NewUUID())
	d.Set("ddb.virtualHWVersion", "4")
	return d
}

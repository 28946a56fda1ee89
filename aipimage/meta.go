package aipimage

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Firmware is the boot firmware of the imaged machine, in the words
// p2v plans use: "bios" or "efi".
type Firmware string

const (
	FirmwareUnknown Firmware = ""
	FirmwareBIOS    Firmware = "bios"
	FirmwareEFI     Firmware = "efi"
	// Deprecated: FirmwareUEFI is FirmwareEFI, the one word used for it.
	FirmwareUEFI = FirmwareEFI
)

// ParseFirmware reads "bios" or "efi" (and "" as FirmwareUnknown).
func ParseFirmware(s string) (Firmware, error) {
	switch f := Firmware(s); f {
	case FirmwareUnknown, FirmwareBIOS, FirmwareEFI:
		return f, nil
	}
	return "", invalidf("firmware %q: want bios or efi", s)
}

// UnmarshalJSON reads files written before "efi" was the one word for
// it, which say "uefi".
func (f *Firmware) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == "uefi" {
		s = string(FirmwareEFI)
	}
	*f = Firmware(s)
	return nil
}

// Machine describes the computer an image set was taken from.
type Machine struct {
	Hostname string   `json:"hostname"`
	OSHint   string   `json:"osHint,omitempty"` // free text from the backup agent, e.g. "Windows Server 2019"
	Firmware Firmware `json:"firmware,omitempty"`
}

// DiskInfo describes one disk of the machine. Size is a multiple of
// SectorSize; SectorSize is 512 or 4096.
type DiskInfo struct {
	Size       int64  `json:"size"`
	SectorSize int    `json:"sectorSize"`
	Label      string `json:"label,omitempty"` // e.g. the disk's model or the agent's name for it
}

// PointInfo is what one image file says about itself: which set, which
// point, which parent, and the machine with its disks.
type PointInfo struct {
	SetID     string     `json:"setId"`
	PointID   string     `json:"pointId"`
	ParentID  string     `json:"parentId,omitempty"` // empty for the full image
	Sequence  int        `json:"sequence"`           // 0 for the full image, parent's + 1 otherwise
	Time      time.Time  `json:"time"`
	Machine   Machine    `json:"machine"`
	Disks     []DiskInfo `json:"disks"`
	BlockSize int        `json:"blockSize"`
	// Resized lists the disks whose size differs from the parent point's,
	// each with its size there: the writer was told that the disks were
	// grown or shrunk (WriterOptions.Resized). Empty for a full image.
	Resized []DiskResize `json:"resized,omitempty"`
	// Encryption is set when the blocks are encrypted.
	Encryption *Encryption `json:"encryption,omitempty"`

	// File is the path the point was read from or written to; not stored.
	File string `json:"-"`
}

// Full reports whether the point is a full image: the root of its chain.
// A set may hold several chains (a new full image, an "active full", is
// written into the set after the newest point): only the first has
// sequence 0.
func (p PointInfo) Full() bool { return p.ParentID == "" }

// DiskResize records that a disk was resized at a point: From is its size
// at the parent point.
type DiskResize struct {
	Disk int   `json:"disk"`
	From int64 `json:"from"`
}

// Encryption holds the key-derivation parameters of an encrypted file. The
// passphrase is stretched with scrypt(N, R, P) over Salt into a set key;
// each file's block key is derived from the set key and the point id.
type Encryption struct {
	KDF      string `json:"kdf"` // "scrypt"
	Salt     []byte `json:"salt"`
	N        int    `json:"n"`
	R        int    `json:"r"`
	P        int    `json:"p"`
	KeyCheck []byte `json:"keyCheck"` // proves a derived key right without touching data
}

// Limits that bound what a reader allocates for a header it cannot trust.
const (
	maxDisks      = 64
	maxDiskSize   = 1 << 50 // 1 PiB
	minBlockSize  = 4 << 10
	maxBlockSize  = 4 << 20
	maxMetaLength = 1 << 20
	maxScryptN    = 1 << 18

	// DefaultBlockSize is the block size used when WriterOptions leaves it zero.
	DefaultBlockSize = 64 << 10
)

func (p *PointInfo) validate() error {
	if !validID(p.SetID) || !validID(p.PointID) {
		return fmt.Errorf("set id %q or point id %q is not a 32-digit hex id", p.SetID, p.PointID)
	}
	if p.ParentID != "" && !validID(p.ParentID) {
		return fmt.Errorf("parent id %q is not a 32-digit hex id", p.ParentID)
	}
	if p.Sequence == 0 && !p.Full() {
		return fmt.Errorf("sequence 0 with parent id %q: only a full image has sequence 0", p.ParentID)
	}
	if p.Sequence < 0 {
		return fmt.Errorf("negative sequence %d", p.Sequence)
	}
	if p.BlockSize < minBlockSize || p.BlockSize > maxBlockSize || p.BlockSize&(p.BlockSize-1) != 0 {
		return fmt.Errorf("block size %d is not a power of two in [%d, %d]", p.BlockSize, minBlockSize, maxBlockSize)
	}
	if len(p.Disks) == 0 || len(p.Disks) > maxDisks {
		return fmt.Errorf("%d disks, want 1 to %d", len(p.Disks), maxDisks)
	}
	for i, d := range p.Disks {
		if d.SectorSize != 512 && d.SectorSize != 4096 {
			return fmt.Errorf("disk %d: sector size %d, want 512 or 4096", i, d.SectorSize)
		}
		if d.Size <= 0 || d.Size > maxDiskSize || d.Size%int64(d.SectorSize) != 0 {
			return fmt.Errorf("disk %d: size %d is not a positive multiple of %d up to 1 PiB", i, d.Size, d.SectorSize)
		}
	}
	if len(p.Resized) > 0 && p.Full() {
		return fmt.Errorf("a full image records a resize")
	}
	for i, r := range p.Resized {
		if r.Disk < 0 || r.Disk >= len(p.Disks) || i > 0 && r.Disk <= p.Resized[i-1].Disk {
			return fmt.Errorf("resize of disk %d: not a disk, or out of order", r.Disk)
		}
		d := p.Disks[r.Disk]
		if r.From <= 0 || r.From > maxDiskSize || r.From%int64(d.SectorSize) != 0 || r.From == d.Size {
			return fmt.Errorf("disk %d resized from %d bytes: not a positive multiple of %d up to 1 PiB other than its size", r.Disk, r.From, d.SectorSize)
		}
	}
	if e := p.Encryption; e != nil {
		if e.KDF != "scrypt" {
			return fmt.Errorf("%w: key derivation %q", ErrUnsupported, e.KDF)
		}
		if len(e.Salt) < 16 || len(e.Salt) > 64 || len(e.KeyCheck) != 32 {
			return fmt.Errorf("encryption salt or key check has a bad length")
		}
		// The bounds cap what a hostile header makes a reader pay before
		// the key check: 128·r·N = 256 MiB of memory, and N·p ≤ 2^18
		// passes of it (about two seconds).
		if e.N < 2 || e.N > maxScryptN || e.N&(e.N-1) != 0 || e.R != 8 || e.P < 1 || e.P > 4 || e.N*e.P > maxScryptN {
			return fmt.Errorf("scrypt parameters N=%d r=%d p=%d out of range (N a power of two, r = 8, 1 ≤ p ≤ 4, N·p ≤ %d)", e.N, e.R, e.P, maxScryptN)
		}
	}
	return nil
}

func (p *PointInfo) blocks(disk int) int64 {
	bs := int64(p.BlockSize)
	return (p.Disks[disk].Size + bs - 1) / bs
}

// blockLen is the number of bytes of block b of disk d: the last block of a
// disk may be short.
func (p *PointInfo) blockLen(disk int, b int64) int {
	bs := int64(p.BlockSize)
	return int(min(bs, p.Disks[disk].Size-b*bs))
}

// NewID returns a random 128-bit id in the 32-hex-digit form used for set
// and point ids.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}

func validID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func idBytes(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}

// resizedFrom returns disk d's size at the parent point when this point
// resized it.
func (p *PointInfo) resizedFrom(disk int) (int64, bool) {
	for _, r := range p.Resized {
		if r.Disk == disk {
			return r.From, true
		}
	}
	return 0, false
}

// stableBlocks is the number of leading blocks of disk d whose extent on
// the disk is the same at this point and at its parent: all of them unless
// the point resized the disk. Blocks from there on are read from this
// point and its successors only, never from older files (see FORMAT.md,
// Resized disks).
func (p *PointInfo) stableBlocks(disk int) int64 {
	from, ok := p.resizedFrom(disk)
	if !ok {
		return p.blocks(disk)
	}
	return min(from, p.Disks[disk].Size) / int64(p.BlockSize)
}

package p2v

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Firmware is the boot firmware the VM must use.
type Firmware string

const (
	FirmwareBIOS Firmware = "bios"
	FirmwareEFI  Firmware = "efi"
)

// Controller is the virtual disk controller the VM boots from.
type Controller string

const (
	ControllerPVSCSI      Controller = "pvscsi"
	ControllerLSILogicSAS Controller = "lsilogic-sas"
	ControllerSATA        Controller = "sata"
	ControllerNVMe        Controller = "nvme"
)

// Patch is a same-size, in-place byte edit of a disk: Data replaces the
// bytes at Offset. The JSON field names are part of the API (see Plan).
type Patch struct {
	Disk   int    `json:"disk"`
	Offset int64  `json:"offset"`
	Data   []byte `json:"data"`
	Why    string `json:"why"` // for the operator: what the edit does and why
}

// End returns the first offset past the patch.
func (p Patch) End() int64 { return p.Offset + int64(len(p.Data)) }

// Plan is what inspection decided for one backup point: the virtual
// hardware the guest can boot on and the byte patches that make it do so.
// A zero Plan patches nothing.
//
// Its JSON form (p2vinspect --json prints it) is stable:
//
//	{
//	  "firmware": "bios" | "efi",
//	  "guestId": "windows2019srv_64Guest",  // "" when no OS was recognised
//	  "controller": "pvscsi" | "lsilogic-sas" | "sata" | "nvme" | "",
//	  "patches": [                          // [] when there is nothing to patch
//	    {
//	      "disk": 0,                        // index of the disk, 0 the boot disk
//	      "offset": 1048576,                // byte offset on that disk
//	      "data": "AAAAAA==",               // the bytes written there, base64
//	      "why": "…"                        // for the operator
//	    }
//	  ],
//	  "warnings": ["…"]                     // [] when there are none
//	}
type Plan struct {
	Firmware   Firmware   `json:"firmware"`
	GuestID    string     `json:"guestId"` // ESXi guest OS identifier, e.g. "windows2019srv_64Guest"
	Controller Controller `json:"controller"`
	Patches    []Patch    `json:"patches"`
	Warnings   []string   `json:"warnings"`
}

// MarshalJSON writes empty patch and warning lists as [], not null, so
// that the JSON form has one shape.
func (p Plan) MarshalJSON() ([]byte, error) {
	type plain Plan // without this method
	q := plain(p)
	if q.Patches == nil {
		q.Patches = []Patch{}
	}
	if q.Warnings == nil {
		q.Warnings = []string{}
	}
	return json.Marshal(q)
}

// ErrOverlap is returned for patches of one disk that overlap each other.
var ErrOverlap = errors.New("p2v: overlapping patches")

// DiskPatches returns the patches of disk d sorted by offset, and an error
// if any two overlap or one is negative.
func (p *Plan) DiskPatches(d int) ([]Patch, error) {
	var out []Patch
	for _, pt := range p.Patches {
		if pt.Disk == d && len(pt.Data) > 0 {
			out = append(out, pt)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	for i, pt := range out {
		if pt.Offset < 0 {
			return nil, fmt.Errorf("p2v: patch at negative offset %d", pt.Offset)
		}
		if i > 0 && pt.Offset < out[i-1].End() {
			return nil, fmt.Errorf("%w: [%d,%d) and [%d,%d)", ErrOverlap, out[i-1].Offset, out[i-1].End(), pt.Offset, pt.End())
		}
	}
	return out, nil
}

// Digest identifies the plan's patches: equal digests mean equal bytes
// written at equal offsets. Boot-point metadata records it.
func (p *Plan) Digest() string {
	h := sha256.New()
	patches := append([]Patch(nil), p.Patches...)
	sort.SliceStable(patches, func(i, j int) bool {
		if patches[i].Disk != patches[j].Disk {
			return patches[i].Disk < patches[j].Disk
		}
		return patches[i].Offset < patches[j].Offset
	})
	var hdr [20]byte
	for _, pt := range patches {
		binary.LittleEndian.PutUint32(hdr[0:], uint32(pt.Disk))
		binary.LittleEndian.PutUint64(hdr[4:], uint64(pt.Offset))
		binary.LittleEndian.PutUint64(hdr[12:], uint64(len(pt.Data)))
		h.Write(hdr[:])
		h.Write(pt.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Overlay presents a disk with patches applied, as an io.ReaderAt. The
// source is never written.
type Overlay struct {
	src     io.ReaderAt
	patches []Patch // sorted, disjoint
}

// NewOverlay returns src with disk d's patches of plan applied.
func NewOverlay(src io.ReaderAt, plan *Plan, d int) (*Overlay, error) {
	patches, err := plan.DiskPatches(d)
	if err != nil {
		return nil, err
	}
	return &Overlay{src: src, patches: patches}, nil
}

// ReadAt reads the source and replaces the bytes that patches cover.
func (o *Overlay) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.src.ReadAt(p, off)
	end := off + int64(n)
	i := sort.Search(len(o.patches), func(i int) bool { return o.patches[i].End() > off })
	for ; i < len(o.patches) && o.patches[i].Offset < end; i++ {
		pt := o.patches[i]
		lo, hi := max(pt.Offset, off), min(pt.End(), end)
		copy(p[lo-off:hi-off], pt.Data[lo-pt.Offset:hi-pt.Offset])
	}
	return n, err
}

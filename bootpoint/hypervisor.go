package bootpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/standbykit/standbykit/p2v"
)

// Hypervisor is what the boot-point pipeline needs from a virtualization
// host. Package esx implements it on VMware ESXi (and govmomi's simulator);
// bootpoint/hypervisortest has an in-memory one and the conformance suite
// every implementation must pass.
//
// The contract says what a disk must hold, never how: a Delta names the
// bytes that change and gives the whole content they come from, and a boot
// point's disk is read back as an io.ReaderAt. Disk formats, delta files
// and transports are the hypervisor's business.
//
// Every method that changes the VM must either complete or leave the VM as
// it was: a boot point either exists whole, with its snapshot, or not at
// all.
type Hypervisor interface {
	// CreateStandby creates a powered-off VM from spec whose disk d holds
	// disks[d]: the bytes of Source inside Extents, zeros elsewhere. It
	// takes no snapshot, and refuses a name that exists.
	CreateStandby(ctx context.Context, spec VMSpec, disks []Delta) (VM, error)
	// FindVM returns the VM of that name, or ErrNotFound.
	FindVM(ctx context.Context, name string) (VM, error)
	// DestroyVM deletes a powered-off VM and its files.
	DestroyVM(ctx context.Context, vm VM) error
	// AddBootPoint writes each change into its disk, on top of the
	// content of the VM's current snapshot (afterwards the disk reads as
	// the change's Source inside its Extents and as that snapshot
	// elsewhere), and then takes a snapshot with the given name and
	// description, which becomes the current one. Disks without a change
	// keep their content. Changes are refused with ErrDiverged when the
	// VM's current state may differ from its current snapshot's (a guest
	// wrote to it, its current snapshot was removed, it has none): they
	// are never written on top of someone's data, nor is that data
	// discarded. Without changes, the snapshot records the current state
	// as it is. On failure the VM is as it was.
	AddBootPoint(ctx context.Context, vm VM, changes []Delta, name, description string) (Snapshot, error)
	// Snapshots lists the VM's snapshots, oldest first.
	Snapshots(ctx context.Context, vm VM) ([]Snapshot, error)
	// RemoveSnapshot removes one snapshot, consolidating its disks: every
	// other snapshot and the current state read as before.
	RemoveSnapshot(ctx context.Context, vm VM, s Snapshot) error
	// Revert makes the VM's current state that of snapshot s, which then
	// is the current snapshot, and leaves the VM powered off; whatever
	// was written since the previous current snapshot is discarded.
	Revert(ctx context.Context, vm VM, s Snapshot) error
	// SetPower powers the VM on or off.
	SetPower(ctx context.Context, vm VM, on bool) error
	// OpenDisk reads disk d as snapshot s holds it: what verification
	// compares with the image point.
	OpenDisk(ctx context.Context, vm VM, s Snapshot, disk int) (Disk, error)
}

// Disk is a boot point's disk read back from the hypervisor.
type Disk interface {
	io.ReaderAt
	io.Closer
	// Size is the disk's capacity in bytes.
	Size() int64
}

// ErrNotFound reports a VM or snapshot that does not exist.
var ErrNotFound = errors.New("bootpoint: not found")

// ErrDiverged reports a VM whose current state is not what its current
// boot point left: someone powered it on and wrote to its disks (a
// failover, a test). No boot point is written on top of it.
var ErrDiverged = errors.New("bootpoint: the VM's disks changed since its current boot point")

// VM identifies a virtual machine on a hypervisor.
type VM struct {
	Name string
	ID   string // the hypervisor's reference, e.g. "vm-42"
	// Annotation is the VM's notes, as CreateStandby set them: how a
	// standby VM is told from a VM someone else made.
	Annotation string
}

// VMSpec describes a standby VM.
type VMSpec struct {
	Name       string
	GuestID    string // ESXi guest identifier; empty means "otherGuest64"
	Firmware   p2v.Firmware
	CPUs       int // 0 means 2
	MemoryMiB  int // 0 means 4096
	Controller p2v.Controller
	DiskSizes  []int64 // capacity in bytes per disk, multiples of 512
	Network    string  // port group of the NIC; empty means no NIC
	// ConnectNIC connects the NIC at power-on. Off by default: a standby
	// must never clash with the live server's address.
	ConnectNIC bool
	// Annotation is the VM's notes; Standby records which image set the
	// VM is kept from.
	Annotation string
}

// standbyAnnotation marks a VM as a standby kept from an image set.
func standbyAnnotation(setID string) string {
	return "Standby VM kept by StandbyKit from image set " + setID + ". Its snapshots are boot points: revert to one and power on."
}

// Snapshot is a VM snapshot as the hypervisor reports it.
type Snapshot struct {
	ID          string
	Name        string
	Description string
	Created     time.Time
	// Current marks the snapshot the VM's current state descends from
	// (the newest one taken, or the one last reverted to).
	Current bool
}

// Metadata is what a boot point's snapshot description records, so that
// the hypervisor stays the source of truth and local state can be rebuilt
// from it.
type Metadata struct {
	Kind        string    `json:"kind"` // always "standbykit-bootpoint"
	SetID       string    `json:"setId"`
	PointID     string    `json:"pointId"`
	Sequence    int       `json:"sequence"`
	PointTime   time.Time `json:"pointTime"`
	PatchDigest string    `json:"patchDigest"`
	Library     string    `json:"library"`
}

const metadataKind = "standbykit-bootpoint"

// Description encodes m for a snapshot description.
func (m Metadata) Description() string {
	m.Kind = metadataKind
	b, _ := json.Marshal(m)
	return string(b)
}

// ParseMetadata decodes a snapshot description written by Description. A
// snapshot someone else took returns ErrNotBootPoint.
//
// A description comes from the hypervisor, so it is checked as outside
// input: a description longer than maxDescription or a sequence number
// out of range is not a boot point of ours either.
func ParseMetadata(description string) (Metadata, error) {
	var m Metadata
	if len(description) > maxDescription {
		return Metadata{}, ErrNotBootPoint
	}
	if err := json.Unmarshal([]byte(description), &m); err != nil || m.Kind != metadataKind ||
		m.Sequence < 0 || m.Sequence > maxSequence {
		return Metadata{}, ErrNotBootPoint
	}
	return m, nil
}

// Bounds of a boot point's description: Description writes a few hundred
// bytes, and an image set's sequence numbers count its points.
const (
	maxDescription = 64 << 10
	maxSequence    = 1 << 30
)

// ErrNotBootPoint reports a snapshot that StandbyKit did not make.
var ErrNotBootPoint = errors.New("bootpoint: snapshot is not a boot point")

// SnapshotName is the human-readable name of a boot point's snapshot,
// e.g. "bootpoint 0007 2026-11-24 03:00".
func SnapshotName(sequence int, t time.Time) string {
	return fmt.Sprintf("bootpoint %04d %s", sequence, t.UTC().Format("2006-01-02 15:04"))
}

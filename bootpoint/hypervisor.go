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
// tests may implement it in memory.
//
// Every method that changes the VM must either complete or leave the VM as
// it was: a boot point either exists whole, with its snapshot, or not at
// all.
type Hypervisor interface {
	// CreateStandby creates a powered-off VM from spec whose disk d is
	// imported from bases[d], a streamOptimized VMDK stream.
	CreateStandby(ctx context.Context, spec VMSpec, bases []File) (VM, error)
	// FindVM returns the VM of that name, or ErrNotFound.
	FindVM(ctx context.Context, name string) (VM, error)
	// DestroyVM deletes a powered-off VM and its files.
	DestroyVM(ctx context.Context, vm VM) error
	// LeafDescriptor returns the file name and content of disk d's
	// current leaf descriptor: the parent of the next delta.
	LeafDescriptor(ctx context.Context, vm VM, disk int) (name string, content []byte, err error)
	// AddBootPoint makes each delta the current leaf of its disk (its
	// descriptor names the current leaf as parent) and then takes a
	// snapshot with the given name and description.
	AddBootPoint(ctx context.Context, vm VM, deltas []DiskDelta, name, description string) (Snapshot, error)
	// Snapshots lists the VM's snapshots, oldest first.
	Snapshots(ctx context.Context, vm VM) ([]Snapshot, error)
	// RemoveSnapshot removes one snapshot, consolidating its disks.
	RemoveSnapshot(ctx context.Context, vm VM, s Snapshot) error
	// Revert makes the VM's current state that of snapshot s.
	Revert(ctx context.Context, vm VM, s Snapshot) error
	// SetPower powers the VM on or off.
	SetPower(ctx context.Context, vm VM, on bool) error
	// DiskChain returns every file of disk d's chain at snapshot s
	// (descriptors and extents, the leaf's descriptor first), each
	// openable for reading: what verification reads back.
	DiskChain(ctx context.Context, vm VM, s Snapshot, disk int) ([]RemoteFile, error)
}

// ErrNotFound reports a VM or snapshot that does not exist.
var ErrNotFound = errors.New("bootpoint: not found")

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

// File is content to place on the host. Open may be called more than once
// (a retry re-reads from the start).
type File struct {
	Name string
	Size int64 // -1 when unknown (a stream produced on the fly)
	Open func() (io.ReadCloser, error)
}

// DiskDelta is the new leaf of one disk: a descriptor and its extent.
type DiskDelta struct {
	Disk       int
	Descriptor File
	Extent     File
}

// Snapshot is a VM snapshot as the hypervisor reports it.
type Snapshot struct {
	ID          string
	Name        string
	Description string
	Created     time.Time
}

// RemoteFile is a file on the host that can be read back.
type RemoteFile struct {
	Name string
	Size int64 // -1 when the host does not say
	Open func(ctx context.Context) (io.ReadCloser, error)
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
func ParseMetadata(description string) (Metadata, error) {
	var m Metadata
	if err := json.Unmarshal([]byte(description), &m); err != nil || m.Kind != metadataKind {
		return Metadata{}, ErrNotBootPoint
	}
	return m, nil
}

// ErrNotBootPoint reports a snapshot that StandbyKit did not make.
var ErrNotBootPoint = errors.New("bootpoint: snapshot is not a boot point")

// SnapshotName is the human-readable name of a boot point's snapshot,
// e.g. "bootpoint 0007 2026-11-24 03:00".
func SnapshotName(sequence int, t time.Time) string {
	return fmt.Sprintf("bootpoint %04d %s", sequence, t.UTC().Format("2006-01-02 15:04"))
}

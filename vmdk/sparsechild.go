package vmdk

import (
	"fmt"
)

// NewSparseChild returns the descriptor of a child link on top of the
// parent link named parentName (its file name as the child's descriptor
// refers to it, relative to the child's directory) whose descriptor is
// parent. The child's one extent is the hosted sparse file extentName
// (relative to the child's directory too), to be made by CreateSparse
// with parent.Capacity(): a new CID, parentCID = the parent's CID,
// parentFileNameHint, and one SPARSE extent line.
//
// Its createType is twoGbMaxExtentSparse, the one VMware defines for a
// text descriptor naming hosted sparse extents (monolithicSparse is a
// single file with the descriptor embedded in it; qemu refuses it in a
// stand-alone descriptor). VMware's own such disks split at 2 GiB; qemu
// and OpenChain read a single extent of any size, which is what this
// descriptor names.
func NewSparseChild(parentName string, parent *Descriptor, extentName string) (*Descriptor, error) {
	if parent == nil || parentName == "" || extentName == "" {
		return nil, fmt.Errorf("%w: a sparse child needs its parent's name and descriptor and an extent name", ErrInvalidInput)
	}
	capacity := parent.Capacity()
	if capacity <= 0 {
		return nil, fmt.Errorf("%w: parent %s has no capacity", ErrInvalidInput, parentName)
	}
	if capacity/SectorSize > maxSparseSectors {
		return nil, fmt.Errorf("%w: a hosted sparse extent of %d bytes (512 TiB at most)", ErrTooLarge, capacity)
	}
	d := &Descriptor{
		Version:            1,
		Encoding:           "UTF-8",
		ParentCID:          parent.CID,
		CreateType:         CreateTwoGbSparse,
		ParentFileNameHint: parentName,
		Other:              []KeyValue{{"isNativeSnapshot", "no"}},
		Extents:            []Extent{{Access: "RW", Sectors: capacity / SectorSize, Type: ExtentSparse, File: extentName}},
	}
	d.SetCID(NewCID())
	if _, err := d.MarshalText(); err != nil {
		return nil, err
	}
	return d, nil
}

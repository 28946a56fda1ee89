package ntfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Well-known MFT record numbers.
const (
	recMFT    = 0
	recRoot   = 5
	recUpCase = 10
)

// Limits that keep reads bounded on hostile input.
const (
	maxRecordSize   = 64 << 10
	maxIndexSize    = 64 << 10
	maxClusterSize  = 2 << 20
	maxReadAll      = 256 << 20
	maxAttrList     = 1 << 20
	maxExtensions   = 1024
	maxIndexDepth   = 32
	maxIndexBitmap  = 8 << 20
	maxMFTExtents   = 64
	fixupStride     = 512
	upcaseEntries   = 65536
	maxDirEntries   = 1 << 20
	maxPathSegments = 256
)

// Volume is an NTFS volume opened read-only. Its methods are safe for
// concurrent use when the underlying io.ReaderAt is.
type Volume struct {
	r    io.ReaderAt
	size int64

	sectorSize      int
	clusterSize     int64
	totalClusters   int64
	mftLCN          int64
	recordSize      int
	indexRecordSize int
	serial          uint64

	mft *stream // the $MFT's unnamed $DATA

	upcaseOnce sync.Once
	upcase     []uint16
	upcaseErr  error
}

// Open reads the boot sector and the $MFT record of the NTFS volume r of
// size bytes (a partition, not a whole disk).
func Open(r io.ReaderAt, size int64) (*Volume, error) {
	if r == nil || size < 512 {
		return nil, fmt.Errorf("%w: volume of %d bytes is too small", ErrNotNTFS, size)
	}
	var b [512]byte
	if _, err := r.ReadAt(b[:], 0); err != nil && !(errors.Is(err, io.EOF)) {
		return nil, fmt.Errorf("ntfs: reading boot sector: %w", err)
	}
	switch string(b[3:11]) {
	case "NTFS    ":
	case "-FVE-FS-":
		return nil, ErrBitLocker
	default:
		return nil, fmt.Errorf("%w: OEM id %q", ErrNotNTFS, b[3:11])
	}
	v := &Volume{r: r, size: size}
	bps := int(binary.LittleEndian.Uint16(b[0x0B:]))
	if bps < 256 || bps > 4096 || bps&(bps-1) != 0 {
		return nil, fmt.Errorf("%w: %d bytes per sector", ErrNotNTFS, bps)
	}
	v.sectorSize = bps
	spc := int64(b[0x0D])
	switch {
	case spc == 0:
		return nil, fmt.Errorf("%w: 0 sectors per cluster", ErrNotNTFS)
	case spc > 0x80:
		// Large clusters: the byte is -n and the count is 2^n.
		n := 256 - spc
		if n > 20 {
			return nil, fmt.Errorf("%w: sectors per cluster 2^%d", ErrNotNTFS, n)
		}
		spc = 1 << n
	case spc&(spc-1) != 0:
		return nil, fmt.Errorf("%w: %d sectors per cluster", ErrNotNTFS, spc)
	}
	v.clusterSize = spc * int64(bps)
	if v.clusterSize > maxClusterSize {
		return nil, unsupportedf("cluster size %d", v.clusterSize)
	}
	if v.clusterSize < fixupStride {
		// Resident ranges rely on clusters being 512-byte aligned.
		return nil, unsupportedf("cluster size %d below 512", v.clusterSize)
	}
	v.totalClusters = size / v.clusterSize
	v.mftLCN = int64(binary.LittleEndian.Uint64(b[0x30:]))
	var err error
	if v.recordSize, err = v.sizeField(int8(b[0x40]), maxRecordSize); err != nil {
		return nil, fmt.Errorf("%w: MFT record size: %v", ErrNotNTFS, err)
	}
	if v.indexRecordSize, err = v.sizeField(int8(b[0x44]), maxIndexSize); err != nil {
		return nil, fmt.Errorf("%w: index record size: %v", ErrNotNTFS, err)
	}
	v.serial = binary.LittleEndian.Uint64(b[0x48:])
	if v.mftLCN <= 0 || v.mftLCN >= v.totalClusters {
		return nil, corruptf("MFT at cluster %d outside the volume (%d clusters)", v.mftLCN, v.totalClusters)
	}
	if err := v.loadMFT(); err != nil {
		return nil, err
	}
	return v, nil
}

// sizeField decodes a "clusters per record" boot sector byte: positive is a
// cluster count, negative n is 2^-n bytes.
func (v *Volume) sizeField(n int8, max int) (int, error) {
	var s int64
	if n > 0 {
		s = int64(n) * v.clusterSize
	} else {
		if n < -30 || n == 0 {
			return 0, fmt.Errorf("field %d", n)
		}
		s = 1 << uint(-n)
	}
	if s < fixupStride || s > int64(max) || s%fixupStride != 0 {
		return 0, fmt.Errorf("%d bytes", s)
	}
	return int(s), nil
}

// ClusterSize returns the volume's cluster size in bytes.
func (v *Volume) ClusterSize() int64 { return v.clusterSize }

// RecordSize returns the size of an MFT record in bytes.
func (v *Volume) RecordSize() int { return v.recordSize }

// Serial returns the volume serial number.
func (v *Volume) Serial() uint64 { return v.serial }

// readRaw reads len(p) bytes at volume offset off, which must lie inside
// the volume.
func (v *Volume) readRaw(p []byte, off int64) error {
	if off < 0 || off > v.size || int64(len(p)) > v.size-off {
		return corruptf("read of %d bytes at %d beyond the volume end %d", len(p), off, v.size)
	}
	n, err := v.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return corruptf("short read at %d: %v", off, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("ntfs: reading at %d: %w", off, err)
}

// loadMFT reads record 0 at the MFT's first cluster and builds the $MFT
// data stream, following its attribute list if it has one.
func (v *Volume) loadMFT() error {
	buf := make([]byte, v.recordSize)
	off := v.mftLCN * v.clusterSize
	if err := v.readRaw(buf, off); err != nil {
		return err
	}
	rec, err := v.parseRecord(buf, recMFT)
	if err != nil {
		return fmt.Errorf("$MFT record: %w", err)
	}
	if rec.flags&recInUse == 0 || rec.base != 0 {
		return corruptf("$MFT record is not an in-use base record")
	}
	// Bootstrap with the extents in record 0 so that extension records
	// named by the attribute list can be read.
	hasList := rec.find(atAttributeList, "") != nil
	mft, err := v.assemble(rec.attrs, atData, "", hasList)
	if err != nil {
		return fmt.Errorf("$MFT data: %w", err)
	}
	if mft.resident != nil {
		return corruptf("$MFT data is resident")
	}
	v.mft = mft
	if hasList {
		all, err := v.gatherAttrs(rec)
		if err != nil {
			return fmt.Errorf("$MFT attribute list: %w", err)
		}
		if v.mft, err = v.newStream(all, atData, ""); err != nil {
			return fmt.Errorf("$MFT data: %w", err)
		}
	}
	if v.mft.size < int64(v.recordSize)*16 {
		return corruptf("$MFT of %d bytes holds fewer than 16 records", v.mft.size)
	}
	return nil
}

// recordCount returns the number of records the $MFT data holds.
func (v *Volume) recordCount() uint64 {
	return uint64(v.mft.size / int64(v.recordSize))
}

// readRecordRaw returns record num as stored (before fixups).
func (v *Volume) readRecordRaw(num uint64) ([]byte, error) {
	if num >= v.recordCount() {
		return nil, corruptf("MFT record %d beyond the $MFT (%d records)", num, v.recordCount())
	}
	buf := make([]byte, v.recordSize)
	if err := v.mft.readAt(buf, int64(num)*int64(v.recordSize)); err != nil {
		return nil, fmt.Errorf("MFT record %d: %w", num, err)
	}
	return buf, nil
}

// readRecord reads and parses MFT record num.
func (v *Volume) readRecord(num uint64) (*record, error) {
	buf, err := v.readRecordRaw(num)
	if err != nil {
		return nil, err
	}
	return v.parseRecord(buf, num)
}

package vmdk

import (
	"encoding/binary"
)

// SectorSize is the unit of every offset and size in VMDK metadata.
const SectorSize = 512

const (
	sparseMagic = 0x564d444b // "KDMV"
	cowdMagic   = 0x44574f43 // "COWD"

	flagNewlineTest   = 1 << 0
	flagRedundantGD   = 1 << 1
	flagZeroedGrain   = 1 << 2
	flagCompressed    = 1 << 16
	flagMarkers       = 1 << 17
	knownIncompatible = flagCompressed | flagMarkers

	gdAtEnd = 0xffffffffffffffff

	markerEOS    = 0
	markerGT     = 1
	markerGD     = 2
	markerFooter = 3

	// Stream-optimized geometry: 64 KiB grains, 512 entries per table.
	streamGrainSectors = 128
	streamGrainSize    = streamGrainSectors * SectorSize
	gtesPerGT          = 512
	gtSectors          = gtesPerGT * 4 / SectorSize

	// vmfsSparse (COWD) geometry: 512-byte grains, 4096 entries per table,
	// one table per 2 MiB.
	cowdHeaderSectors = 4
	cowdGTEntries     = 4096
	cowdGTSectors     = cowdGTEntries * 4 / SectorSize
	cowdRegion        = cowdGTEntries * SectorSize
	// cowdMaxSectors is the largest capacity a COWD header can describe.
	cowdMaxSectors = 0xffffffff
)

// sparseHeader is the 512-byte header of a hosted sparse extent (KDMV),
// also the footer of a streamOptimized file.
type sparseHeader struct {
	Version           uint32
	Flags             uint32
	Capacity          uint64 // sectors
	GrainSize         uint64 // sectors
	DescriptorOffset  uint64
	DescriptorSize    uint64
	NumGTEsPerGT      uint32
	RGDOffset         uint64
	GDOffset          uint64
	OverHead          uint64
	UncleanShutdown   byte
	CompressAlgorithm uint16
}

func (h *sparseHeader) encode(b []byte) {
	clear(b[:SectorSize])
	le := binary.LittleEndian
	le.PutUint32(b[0:], sparseMagic)
	le.PutUint32(b[4:], h.Version)
	le.PutUint32(b[8:], h.Flags)
	le.PutUint64(b[12:], h.Capacity)
	le.PutUint64(b[20:], h.GrainSize)
	le.PutUint64(b[28:], h.DescriptorOffset)
	le.PutUint64(b[36:], h.DescriptorSize)
	le.PutUint32(b[44:], h.NumGTEsPerGT)
	le.PutUint64(b[48:], h.RGDOffset)
	le.PutUint64(b[56:], h.GDOffset)
	le.PutUint64(b[64:], h.OverHead)
	b[72] = h.UncleanShutdown
	copy(b[73:77], "\n \r\n")
	le.PutUint16(b[77:], h.CompressAlgorithm)
}

// decodeSparseHeader reads a KDMV header; ok is false when the magic is
// not there.
func decodeSparseHeader(b []byte) (h sparseHeader, ok bool) {
	le := binary.LittleEndian
	if len(b) < SectorSize || le.Uint32(b) != sparseMagic {
		return h, false
	}
	return sparseHeader{
		Version:           le.Uint32(b[4:]),
		Flags:             le.Uint32(b[8:]),
		Capacity:          le.Uint64(b[12:]),
		GrainSize:         le.Uint64(b[20:]),
		DescriptorOffset:  le.Uint64(b[28:]),
		DescriptorSize:    le.Uint64(b[36:]),
		NumGTEsPerGT:      le.Uint32(b[44:]),
		RGDOffset:         le.Uint64(b[48:]),
		GDOffset:          le.Uint64(b[56:]),
		OverHead:          le.Uint64(b[64:]),
		UncleanShutdown:   b[72],
		CompressAlgorithm: le.Uint16(b[77:]),
	}, true
}

// cowdHeader is the part of the 2048-byte COWD header that matters.
type cowdHeader struct {
	NumSectors   uint32
	GrainSize    uint32
	GDOffset     uint32
	NumGDEntries uint32
	FreeSector   uint32
}

func (h *cowdHeader) encode(b []byte) {
	clear(b[:cowdHeaderSectors*SectorSize])
	le := binary.LittleEndian
	le.PutUint32(b[0:], cowdMagic)
	le.PutUint32(b[4:], 1) // version
	le.PutUint32(b[8:], 3) // flags, as the spec and ESXi write
	le.PutUint32(b[12:], h.NumSectors)
	le.PutUint32(b[16:], h.GrainSize)
	le.PutUint32(b[20:], h.GDOffset)
	le.PutUint32(b[24:], h.NumGDEntries)
	le.PutUint32(b[28:], h.FreeSector)
}

func decodeCOWDHeader(b []byte) (h cowdHeader, ok bool) {
	le := binary.LittleEndian
	if len(b) < cowdHeaderSectors*SectorSize || le.Uint32(b) != cowdMagic {
		return h, false
	}
	return cowdHeader{
		NumSectors:   le.Uint32(b[12:]),
		GrainSize:    le.Uint32(b[16:]),
		GDOffset:     le.Uint32(b[20:]),
		NumGDEntries: le.Uint32(b[24:]),
		FreeSector:   le.Uint32(b[28:]),
	}, true
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

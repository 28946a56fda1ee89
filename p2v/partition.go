package p2v

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// Partition scheme names.
const (
	SchemeMBR = "dos"
	SchemeGPT = "gpt"
)

// Well-known partition types.
const (
	GPTTypeEFISystem   = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	GPTTypeMSReserved  = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
	GPTTypeMSBasicData = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
	GPTTypeLinuxData   = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	GPTTypeLinuxLVM    = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
	GPTTypeBIOSBoot    = "21686148-6449-6E6F-744E-656564454649"
)

// Partition is one entry of a partition table. Start and Size are bytes.
type Partition struct {
	Number int    // 1-based, as Linux numbers them (logical MBR partitions from 5)
	Start  int64  // byte offset on the disk
	Size   int64  // bytes
	Type   string // GPT type GUID (upper case), or MBR type in hex ("83", "7", "ee")
	GUID   string // GPT partition GUID
	Name   string // GPT partition name
	Active bool   // MBR boot flag
}

// PartitionTable is a disk's partition table.
type PartitionTable struct {
	Scheme     string // SchemeMBR or SchemeGPT
	ID         string // MBR disk signature ("0x1234abcd") or GPT disk GUID
	SectorSize int
	Partitions []Partition
	Warnings   []string // e.g. a damaged primary GPT header recovered from the backup
}

// Errors of ReadPartitionTable.
var (
	ErrNoPartitionTable  = errors.New("p2v: no partition table")
	ErrBadPartitionTable = errors.New("p2v: damaged partition table")
)

// Firmware guesses the boot firmware from the table: GPT with an EFI
// System Partition boots with EFI, anything else with BIOS.
func (t *PartitionTable) Firmware() Firmware {
	if t.Scheme == SchemeGPT {
		for _, p := range t.Partitions {
			if p.Type == GPTTypeEFISystem {
				return FirmwareEFI
			}
		}
	}
	return FirmwareBIOS
}

// ReadPartitionTable reads the MBR or GPT of a disk of size bytes.
func ReadPartitionTable(r io.ReaderAt, size int64, sectorSize int) (*PartitionTable, error) {
	if sectorSize != 512 && sectorSize != 4096 {
		return nil, fmt.Errorf("p2v: sector size %d", sectorSize)
	}
	if size < 512 {
		return nil, fmt.Errorf("%w: a disk of %d bytes has no MBR", ErrNoPartitionTable, size)
	}
	mbr := make([]byte, 512)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("p2v: reading MBR: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil, ErrNoPartitionTable
	}
	for i := range 4 {
		if mbr[446+i*16+4] == 0xee {
			return readGPT(r, size, sectorSize)
		}
	}
	return readMBR(r, mbr, size, sectorSize)
}

func readMBR(r io.ReaderAt, mbr []byte, size int64, sectorSize int) (*PartitionTable, error) {
	ss := int64(sectorSize)
	t := &PartitionTable{Scheme: SchemeMBR, SectorSize: sectorSize,
		ID: fmt.Sprintf("0x%08x", binary.LittleEndian.Uint32(mbr[440:]))}
	var extended *Partition
	for i := range 4 {
		e := mbr[446+i*16:][:16]
		typ := e[4]
		if typ == 0 {
			continue
		}
		p := Partition{Number: i + 1, Type: fmt.Sprintf("%x", typ), Active: e[0] == 0x80,
			Start: int64(binary.LittleEndian.Uint32(e[8:])) * ss, Size: int64(binary.LittleEndian.Uint32(e[12:])) * ss}
		if p.Size == 0 || p.Start+p.Size > size {
			return nil, fmt.Errorf("%w: MBR entry %d [%d,+%d) outside the disk of %d bytes", ErrBadPartitionTable, i+1, p.Start, p.Size, size)
		}
		t.Partitions = append(t.Partitions, p)
		if typ == 0x05 || typ == 0x0f || typ == 0x85 {
			if extended != nil {
				return nil, fmt.Errorf("%w: two extended partitions", ErrBadPartitionTable)
			}
			extended = &t.Partitions[len(t.Partitions)-1]
		}
	}
	if extended == nil {
		return t, nil
	}
	// Logical partitions: a chain of EBRs, each relative to the extended
	// partition's start for the link and to itself for the data.
	ext := *extended
	ebr := make([]byte, 512)
	next := ext.Start
	for n := 5; ; n++ {
		if n > 5+255 {
			return nil, fmt.Errorf("%w: EBR chain too long or looping", ErrBadPartitionTable)
		}
		if _, err := r.ReadAt(ebr, next); err != nil {
			return nil, fmt.Errorf("p2v: reading EBR at %d: %w", next, err)
		}
		if ebr[510] != 0x55 || ebr[511] != 0xaa {
			return nil, fmt.Errorf("%w: EBR at %d has no signature", ErrBadPartitionTable, next)
		}
		e, link := ebr[446:462], ebr[462:478]
		if e[4] != 0 {
			p := Partition{Number: n, Type: fmt.Sprintf("%x", e[4]), Active: e[0] == 0x80,
				Start: next + int64(binary.LittleEndian.Uint32(e[8:]))*ss, Size: int64(binary.LittleEndian.Uint32(e[12:])) * ss}
			if p.Size == 0 || p.Start < ext.Start || p.Start+p.Size > ext.Start+ext.Size {
				return nil, fmt.Errorf("%w: logical partition %d outside the extended partition", ErrBadPartitionTable, n)
			}
			t.Partitions = append(t.Partitions, p)
		}
		if link[4] == 0 {
			return t, nil
		}
		following := ext.Start + int64(binary.LittleEndian.Uint32(link[8:]))*ss
		if following <= next || following >= ext.Start+ext.Size {
			return nil, fmt.Errorf("%w: EBR link from %d to %d", ErrBadPartitionTable, next, following)
		}
		next = following
	}
}

const maxGPTEntries = 4096

func readGPT(r io.ReaderAt, size int64, sectorSize int) (*PartitionTable, error) {
	ss := int64(sectorSize)
	last := size/ss - 1
	t := &PartitionTable{Scheme: SchemeGPT, SectorSize: sectorSize}
	if last < 2 {
		return nil, fmt.Errorf("%w: protective MBR on a disk of %d bytes, too small for a GPT", ErrBadPartitionTable, size)
	}
	h, entries, err := readGPTAt(r, 1, last, ss)
	if err != nil {
		var errBackup error
		h, entries, errBackup = readGPTAt(r, last, last, ss)
		if errBackup != nil {
			return nil, fmt.Errorf("%w: primary GPT: %w; backup GPT: %w", ErrBadPartitionTable, err, errBackup)
		}
		t.Warnings = append(t.Warnings, "primary GPT header damaged ("+err.Error()+"); read the backup")
	}
	t.ID = guidString(h[56:72])
	// The usable range comes from the header, which a truncated image
	// does not update: partitions must lie inside the disk too.
	first, lastUsable := binary.LittleEndian.Uint64(h[40:]), binary.LittleEndian.Uint64(h[48:])
	entryLBA := int64(binary.LittleEndian.Uint64(h[72:]))
	esize := int(binary.LittleEndian.Uint32(h[84:]))
	for i := 0; i*esize < len(entries); i++ {
		e := entries[i*esize:][:esize]
		typ := guidString(e[0:16])
		if typ == "00000000-0000-0000-0000-000000000000" {
			continue
		}
		lo, hi := binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:])
		if lo < first || hi > lastUsable || hi < lo || lo < 1 || hi > uint64(last) {
			return nil, fmt.Errorf("%w: GPT entry %d (at byte %d) [%d,%d] outside usable sectors [%d,%d] of a disk of %d sectors",
				ErrBadPartitionTable, i+1, entryLBA*ss+int64(i*esize), lo, hi, first, lastUsable, last+1)
		}
		t.Partitions = append(t.Partitions, Partition{
			Number: i + 1, Start: int64(lo) * ss, Size: int64(hi-lo+1) * ss, Type: typ, GUID: guidString(e[16:32]),
			Name: utf16Name(e[56:128]),
		})
	}
	return t, nil
}

// readGPTAt reads and checks the GPT header at lba and its entry array.
func readGPTAt(r io.ReaderAt, lba, last, ss int64) (header, entries []byte, err error) {
	h := make([]byte, ss)
	if _, err := r.ReadAt(h, lba*ss); err != nil {
		return nil, nil, err
	}
	if string(h[:8]) != "EFI PART" {
		return nil, nil, errors.New("no EFI PART signature")
	}
	hsize := binary.LittleEndian.Uint32(h[12:])
	if hsize < 92 || int64(hsize) > ss {
		return nil, nil, fmt.Errorf("header size %d", hsize)
	}
	sum := binary.LittleEndian.Uint32(h[16:])
	check := make([]byte, hsize)
	copy(check, h[:hsize])
	clear(check[16:20])
	if crc32.ChecksumIEEE(check) != sum {
		return nil, nil, errors.New("header CRC mismatch")
	}
	if int64(binary.LittleEndian.Uint64(h[24:])) != lba {
		return nil, nil, errors.New("header does not describe its own location")
	}
	entryLBA := int64(binary.LittleEndian.Uint64(h[72:]))
	count, esize := binary.LittleEndian.Uint32(h[80:]), binary.LittleEndian.Uint32(h[84:])
	if count > maxGPTEntries || esize < 128 || esize > 1024 || esize%8 != 0 {
		return nil, nil, fmt.Errorf("%d entries of %d bytes", count, esize)
	}
	n := int64(count) * int64(esize)
	if entryLBA < 2 || entryLBA > last || entryLBA*ss+n > (last+1)*ss {
		return nil, nil, fmt.Errorf("entry array at LBA %d outside the disk", entryLBA)
	}
	entries = make([]byte, n)
	if _, err := r.ReadAt(entries, entryLBA*ss); err != nil {
		return nil, nil, err
	}
	if crc32.ChecksumIEEE(entries) != binary.LittleEndian.Uint32(h[88:]) {
		return nil, nil, errors.New("partition entry array CRC mismatch")
	}
	return h, entries, nil
}

// guidString formats a GPT GUID (mixed-endian) in its usual upper-case form.
func guidString(b []byte) string {
	return strings.ToUpper(fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]), binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16]))
}

func utf16Name(b []byte) string {
	var units []uint16
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		units = append(units, c)
	}
	return string(utf16.Decode(units))
}

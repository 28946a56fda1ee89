package p2v

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/fuzzimage"
	"github.com/standbykit/standbykit/internal/heapprobe"
)

// Fuzz inputs are whole disks, kept tiny (8 to 16 KiB, no tools needed to
// build them) so that each execution and each minimization step is cheap.

const tinySector = 512

// gptEntry is a partition of tinyGPT, in sectors.
type gptEntry struct {
	typ, guid, name string
	first, last     uint64
}

// tinyGPT builds a disk of n sectors with a protective MBR, a GPT of four
// entries at LBA 2 and its backup at the end.
func tinyGPT(n uint64, parts []gptEntry) []byte {
	disk := make([]byte, n*tinySector)
	mbr := disk[:tinySector]
	mbr[446+4] = 0xee
	binary.LittleEndian.PutUint32(mbr[446+8:], 1)
	binary.LittleEndian.PutUint32(mbr[446+12:], uint32(n-1))
	mbr[510], mbr[511] = 0x55, 0xaa

	entries := make([]byte, 4*128)
	for i, p := range parts {
		e := entries[i*128:]
		copy(e[0:16], guidBytes(p.typ))
		copy(e[16:32], guidBytes(p.guid))
		binary.LittleEndian.PutUint64(e[32:], p.first)
		binary.LittleEndian.PutUint64(e[40:], p.last)
		for j, u := range utf16.Encode([]rune(p.name)) {
			binary.LittleEndian.PutUint16(e[56+2*j:], u)
		}
	}
	header := func(lba, alt, entryLBA uint64) {
		h := disk[lba*tinySector:][:tinySector]
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x10000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], lba)
		binary.LittleEndian.PutUint64(h[32:], alt)
		binary.LittleEndian.PutUint64(h[40:], 3)
		binary.LittleEndian.PutUint64(h[48:], n-3)
		copy(h[56:72], guidBytes("6E2C3B4A-1D5F-4E8A-9C7B-0A1B2C3D4E5F"))
		binary.LittleEndian.PutUint64(h[72:], entryLBA)
		binary.LittleEndian.PutUint32(h[80:], 4)
		binary.LittleEndian.PutUint32(h[84:], 128)
		copy(disk[entryLBA*tinySector:], entries)
	}
	header(1, n-1, 2)
	header(n-1, 1, n-2)
	return fixGPT(disk, tinySector)
}

// guidBytes encodes a GUID string in GPT's mixed-endian layout.
func guidBytes(s string) []byte {
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(raw) != 16 {
		panic("bad GUID " + s)
	}
	out := append([]byte(nil), raw...)
	binary.LittleEndian.PutUint32(out[0:], binary.BigEndian.Uint32(raw[0:]))
	binary.LittleEndian.PutUint16(out[4:], binary.BigEndian.Uint16(raw[4:]))
	binary.LittleEndian.PutUint16(out[6:], binary.BigEndian.Uint16(raw[6:]))
	return out
}

// fixGPT recomputes the entry array and header CRCs of the GPT headers
// at LBA 1 and in the last sector, wherever their fields allow, so that
// fuzzing gets past the checksums to the checks behind them.
func fixGPT(disk []byte, ss int) []byte {
	last := len(disk)/ss - 1
	for _, lba := range []int{1, last} {
		if lba < 1 || (lba+1)*ss > len(disk) {
			continue
		}
		h := disk[lba*ss:][:ss]
		if string(h[:8]) != "EFI PART" {
			continue
		}
		entryLBA := binary.LittleEndian.Uint64(h[72:])
		n := uint64(binary.LittleEndian.Uint32(h[80:])) * uint64(binary.LittleEndian.Uint32(h[84:]))
		if entryLBA < uint64(len(disk)/ss) && n <= uint64(len(disk))-entryLBA*uint64(ss) {
			start := entryLBA * uint64(ss)
			binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(disk[start:start+n]))
		}
		hsize := binary.LittleEndian.Uint32(h[12:])
		if hsize >= 20 && int(hsize) <= ss {
			clear(h[16:20])
			binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:hsize]))
		}
	}
	return disk
}

// tinyMBR builds a disk of 24 sectors: a primary partition and an
// extended one holding two logical partitions.
func tinyMBR() []byte {
	disk := make([]byte, 24*tinySector)
	entry := func(sector []byte, i int, active bool, typ byte, start, size uint32) {
		e := sector[446+16*i:]
		if active {
			e[0] = 0x80
		}
		e[4] = typ
		binary.LittleEndian.PutUint32(e[8:], start)
		binary.LittleEndian.PutUint32(e[12:], size)
		sector[510], sector[511] = 0x55, 0xaa
	}
	entry(disk, 0, true, 0x83, 1, 6)
	entry(disk, 1, false, 0x05, 8, 16)
	ebr1, ebr2 := disk[8*tinySector:], disk[16*tinySector:]
	entry(ebr1, 0, false, 0x83, 1, 6) // sectors 9-14
	entry(ebr1, 1, false, 0x05, 8, 8) // next EBR at extended start + 8
	entry(ebr2, 0, false, 0x82, 1, 6) // sectors 17-22
	return disk
}

func tinyGPTDisk() []byte {
	return tinyGPT(16, []gptEntry{
		{GPTTypeEFISystem, "3CF53890-B445-EB45-91D0-48F34ED03F92", "EFI", 3, 6},
		{GPTTypeLinuxData, "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D", "root ü", 7, 13},
	})
}

// checkPartitionTable reads data as a disk of both sector sizes: a table
// or an error, never a panic, and accepted partitions lie inside the disk.
func checkPartitionTable(t *testing.T, data []byte) {
	for _, ss := range []int{512, 4096} {
		tab, err := ReadPartitionTable(bytes.NewReader(data), int64(len(data)), ss)
		if err != nil {
			continue
		}
		for _, p := range tab.Partitions {
			if p.Start < 0 || p.Size <= 0 || p.Start > int64(len(data))-p.Size {
				t.Fatalf("sector size %d: partition %+v outside a disk of %d bytes", ss, p, len(data))
			}
		}
	}
}

// FuzzPartitionTable reads each input as a disk, then again with its GPT
// checksums made right.
func FuzzPartitionTable(f *testing.F) {
	f.Add(tinyGPTDisk())
	f.Add(tinyMBR())
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		checkPartitionTable(t, data)
		checkPartitionTable(t, fixGPT(bytes.Clone(data), tinySector))
	})
}

func TestTinyDisks(t *testing.T) {
	tab, err := ReadPartitionTable(bytes.NewReader(tinyGPTDisk()), 16*tinySector, tinySector)
	require.NoError(t, err)
	require.Equal(t, FirmwareEFI, tab.Firmware())
	require.Len(t, tab.Partitions, 2)
	require.Equal(t, Partition{Number: 2, Start: 7 * 512, Size: 7 * 512, Type: GPTTypeLinuxData,
		GUID: "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D", Name: "root ü"}, tab.Partitions[1])
	require.Empty(t, tab.Warnings)

	tab, err = ReadPartitionTable(bytes.NewReader(tinyMBR()), 24*tinySector, tinySector)
	require.NoError(t, err)
	var got []string
	for _, p := range tab.Partitions {
		got = append(got, fmt.Sprintf("%d:%s@%d+%d", p.Number, p.Type, p.Start/512, p.Size/512))
	}
	require.Equal(t, []string{"1:83@1+6", "2:5@8+16", "5:83@9+6", "6:82@17+6"}, got)
}

// TestGPTPartitionPastDiskEnd is the regression test of a fuzzing find: a
// GPT whose header claims more usable sectors than the (truncated) disk
// has listed partitions beyond its end.
func TestGPTPartitionPastDiskEnd(t *testing.T) {
	disk := tinyGPT(64, []gptEntry{{GPTTypeLinuxData, "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D", "", 3, 60}})
	cut := disk[:32*tinySector]
	_, err := ReadPartitionTable(bytes.NewReader(cut), int64(len(cut)), tinySector)
	require.ErrorIs(t, err, ErrBadPartitionTable)
	require.ErrorContains(t, err, "GPT entry 1 (at byte 1024)")

	// What the fuzzer found first: the committed, minimized input.
	raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzPartitionTable", "regress-gpt-past-end"))
	require.NoError(t, err)
	data, err := fuzzimage.ParseCorpusFile(raw)
	require.NoError(t, err)
	_, err = ReadPartitionTable(bytes.NewReader(data), int64(len(data)), tinySector)
	require.ErrorIs(t, err, ErrBadPartitionTable)
}

// TestPartitionTableClaimsBounded feeds tables whose headers claim
// enormous counts and sizes: they are refused without reading or
// allocating what they claim.
func TestPartitionTableClaimsBounded(t *testing.T) {
	count := tinyGPTDisk()
	for _, lba := range []int{1, 15} {
		binary.LittleEndian.PutUint32(count[lba*tinySector+80:], 1<<31) // entries in the array
	}
	fixGPT(count, tinySector)
	wide := tinyGPTDisk()
	for _, lba := range []int{2, 14} {
		binary.LittleEndian.PutUint64(wide[lba*tinySector+40:], 1<<62) // an entry's last LBA
	}
	fixGPT(wide, tinySector)
	mbr := tinyMBR()
	binary.LittleEndian.PutUint32(mbr[446+16+12:], 0xffffffff) // extended partition sectors
	for name, disk := range map[string][]byte{"gpt-count": count, "gpt-entry": wide, "mbr-size": mbr} {
		alloc := heapprobe.Allocated(func() {
			_, err := ReadPartitionTable(bytes.NewReader(disk), int64(len(disk)), tinySector)
			require.ErrorIs(t, err, ErrBadPartitionTable, name)
		})
		require.Less(t, alloc, uint64(1<<20), name)
	}
}

package aipimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/heapprobe"
)

// Hostile headers: files that claim enormous sizes and counts, laid out
// by hand with every checksum right, so that only the bounds stop them.
// Each must fail with a typed error having allocated little: the budgets
// below are far under what trusting the claim would take.

func hostileInfo() PointInfo {
	return PointInfo{
		SetID: "5b4b1d2f0c9e4a7d8e6f3a2b1c0d9e8f", PointID: "0123456789abcdef0123456789abcdef",
		Time: time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC), Machine: Machine{Hostname: "hostile"},
		Disks: []DiskInfo{{Size: 1 << 20, SectorSize: 512}}, BlockSize: 4096,
	}
}

// rawHeader encodes info without validating it, as a hostile writer would.
func rawHeader(t *testing.T, info any, flags uint16) []byte {
	meta, err := json.Marshal(info)
	require.NoError(t, err)
	b := make([]byte, dataStart(uint32(len(meta))))
	copy(b, headerMagic)
	le.PutUint16(b[8:], formatVersion)
	le.PutUint16(b[10:], flags)
	le.PutUint32(b[12:], uint32(len(meta)))
	le.PutUint32(b[16:], crc(meta))
	le.PutUint32(b[20:], crc(b[:20]))
	copy(b[headerPrefixLen:], meta)
	return b
}

// layImage lays out a file: the header, the pages (each a list of entries
// of disk 0, laid out right after the header unless entries point
// elsewhere), the directory and the trailer, with right checksums.
func layImage(t *testing.T, header []byte, pages ...[]indexEntry) []byte {
	b := bytes.Clone(header)
	var refs []pageRef
	var blocks int64
	for _, entries := range pages {
		refs = append(refs, pageRef{count: len(entries), first: entries[0].block, last: entries[len(entries)-1].block, offset: int64(len(b))})
		b = append(b, encodePage(0, entries)...)
		blocks += int64(len(entries))
	}
	dir := encodeDirectory(refs)
	tr := trailer{headerCRC: le.Uint32(header[20:]), dirOffset: int64(len(b)), dirLen: int64(len(dir)), dirCRC: crc(dir), blockCount: blocks}
	b = append(b, dir...)
	tr.sha256 = sha256.Sum256(b)
	return append(b, encodeTrailer(tr)...)
}

func zeroEntries(first int64, n int) []indexEntry {
	entries := make([]indexEntry, n)
	for i := range entries {
		entries[i] = indexEntry{block: first + int64(i), flags: flagZero}
	}
	return entries
}

func openBytes(data []byte, opts *OpenOptions) error {
	_, err := NewFile(bytes.NewReader(data), int64(len(data)), opts)
	return err
}

func TestHostileHeaderPrefix(t *testing.T) {
	for _, metaLen := range []uint32{math.MaxUint32, maxMetaLength + 1, maxMetaLength} {
		b := make([]byte, 8192)
		copy(b, headerMagic)
		le.PutUint16(b[8:], formatVersion)
		le.PutUint32(b[12:], metaLen)
		le.PutUint32(b[20:], crc(b[:20]))
		var err error
		n := heapprobe.Allocated(func() { err = openBytes(b, nil) })
		// The largest valid length does not fit an 8 KiB file: incomplete.
		require.True(t, errors.Is(err, ErrCorrupt) || errors.Is(err, ErrIncomplete), "metadata length %d: %v", metaLen, err)
		require.Less(t, n, uint64(64<<10), "metadata length %d: allocated %d bytes", metaLen, n)
	}
}

func TestHostileMetadata(t *testing.T) {
	huge := hostileInfo()
	huge.Disks = []DiskInfo{{Size: 1 << 62, SectorSize: 512}}
	manyDisks := hostileInfo()
	manyDisks.Disks = make([]DiskInfo, 20000) // 600 KiB of JSON, 64 disks allowed
	for i := range manyDisks.Disks {
		manyDisks.Disks[i] = DiskInfo{Size: 1 << 50, SectorSize: 512}
	}
	bigBlocks := hostileInfo()
	bigBlocks.BlockSize = 1 << 40
	for name, info := range map[string]PointInfo{"1 EiB disk": huge, "20000 disks": manyDisks, "1 TiB blocks": bigBlocks} {
		data := layImage(t, rawHeader(t, info, 0), zeroEntries(0, 1))
		var err error
		n := heapprobe.Allocated(func() { err = openBytes(data, nil) })
		require.ErrorIs(t, err, ErrCorrupt, name)
		// The metadata is read whole and decoded: a few times its size,
		// never what it claims.
		require.Less(t, n, uint64(8*len(data)+(1<<20)), "%s: allocated %d bytes for a %d-byte file", name, n, len(data))
	}
}

func TestHostileKDFParameters(t *testing.T) {
	for _, e := range []Encryption{
		{N: 1 << 30, R: 8, P: 1},
		{N: 1 << 18, R: 8, P: 4}, // 256 MiB four times over: N·p > 2^18
		{N: 1 << 14, R: 1 << 20, P: 1},
		{N: 1 << 14, R: 8, P: 1 << 20},
		{N: 3 << 14, R: 8, P: 1},
	} {
		info := hostileInfo()
		e.KDF, e.Salt, e.KeyCheck = "scrypt", make([]byte, 16), make([]byte, 32)
		info.Encryption = &e
		data := layImage(t, rawHeader(t, info, headerFlagEncrypted), zeroEntries(0, 1))
		opts := &OpenOptions{Passphrase: []byte("pw")}
		var err error
		n := heapprobe.Allocated(func() { err = openBytes(data, opts) })
		require.ErrorIs(t, err, ErrCorrupt, "N=%d r=%d p=%d", e.N, e.R, e.P)
		require.ErrorContains(t, err, "scrypt parameters")
		require.True(t, opts.keys == nil || len(opts.keys.setKeys) == 0, "no key derived")
		require.Less(t, n, uint64(1<<20), "N=%d r=%d p=%d: allocated %d bytes", e.N, e.R, e.P, n)
	}
}

func TestHostileDirectoryAndTrailer(t *testing.T) {
	hdr := rawHeader(t, hostileInfo(), 0)
	good := layImage(t, hdr, zeroEntries(0, 4))
	require.NoError(t, openBytes(good, nil))
	tr := len(good) - trailerLen
	dirOff := int64(le.Uint64(good[tr+16:]))
	retrail := func(b []byte) []byte {
		le.PutUint32(b[tr+28:], crc(b[dirOff:tr]))
		le.PutUint32(b[tr+88:], crc(b[tr:tr+88]))
		return b
	}
	cases := map[string]func(b []byte){
		"2^32-1 directory entries": func(b []byte) { le.PutUint32(b[tr+24:], math.MaxUint32) },
		"directory offset 2^63-1":  func(b []byte) { le.PutUint64(b[tr+16:], math.MaxInt64) },
		"page of 2^32-1 entries":   func(b []byte) { le.PutUint32(b[dirOff+4:], math.MaxUint32) },
		"page at offset 2^63-64":   func(b []byte) { le.PutUint64(b[dirOff+24:], math.MaxInt64-63) },
		"last block 2^63-1":        func(b []byte) { le.PutUint64(b[dirOff+16:], math.MaxInt64) },
		"2^63-1 blocks in the file": func(b []byte) {
			le.PutUint64(b[tr+32:], math.MaxInt64)
		},
	}
	for name, mutate := range cases {
		b := bytes.Clone(good)
		mutate(b)
		retrail(b)
		var err error
		n := heapprobe.Allocated(func() {
			var f *File
			if f, err = NewFile(bytes.NewReader(b), int64(len(b)), nil); err == nil {
				err = f.Verify(context.Background(), nil)
			}
		})
		require.ErrorIs(t, err, ErrCorrupt, name)
		require.Less(t, n, uint64(64<<10), "%s: allocated %d bytes", name, n)
	}
}

// TestHostileIndexEntries: an index entry whose offset plus length passes
// 2^63 was accepted (the sum wrapped negative), and reading its block
// panicked in a mapped file and failed with a bare EOF otherwise.
func TestHostileIndexEntries(t *testing.T) {
	hdr := rawHeader(t, hostileInfo(), 0)
	for _, e := range []indexEntry{
		{block: 1, offset: math.MaxInt64 - 40, length: 60, flags: flagLZ4},
		{block: 1, offset: 4096, length: math.MaxUint32},
		{block: 1, offset: -1, length: 60},
	} {
		data := layImage(t, hdr, []indexEntry{{block: 0, flags: flagZero}, e})
		path := filepath.Join(t.TempDir(), "hostile"+FileExt)
		require.NoError(t, os.WriteFile(path, data, 0o644))
		mapped, err := OpenFile(path, nil)
		require.NoError(t, err)
		inMemory, err := NewFile(bytes.NewReader(data), int64(len(data)), nil)
		require.NoError(t, err)
		for _, f := range []*File{mapped, inMemory} {
			r, err := (&ImagePoint{layers: []*File{f}, workers: 1}).Disk(0)
			require.NoError(t, err)
			var n uint64
			n = heapprobe.Allocated(func() { _, err = r.ReadAt(make([]byte, 8192), 0) })
			require.ErrorIs(t, err, ErrCorrupt, "%+v", e)
			require.ErrorContains(t, err, "outside the data")
			require.Less(t, n, uint64(64<<10))
			require.ErrorIs(t, f.Verify(context.Background(), nil), ErrCorrupt)
		}
		require.NoError(t, mapped.Close())
	}
}

// TestVerifyZeroBlocksBounded: a 1 PiB disk of 4 MiB blocks whose 4 MiB
// index lists 131072 zero blocks. Verify cleared 4 MiB per 32-byte entry
// (512 GiB of work, most of a minute); zero blocks have nothing to verify.
func TestVerifyZeroBlocksBounded(t *testing.T) {
	info := hostileInfo()
	info.Disks = []DiskInfo{{Size: maxDiskSize, SectorSize: 4096}}
	info.BlockSize = maxBlockSize
	var pages [][]indexEntry
	for p := range 64 {
		pages = append(pages, zeroEntries(int64(p)*entriesPerPage*2, entriesPerPage))
	}
	data := layImage(t, rawHeader(t, info, 0), pages...)
	f, err := NewFile(bytes.NewReader(data), int64(len(data)), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n uint64
	n = heapprobe.Allocated(func() { err = f.Verify(ctx, nil) })
	require.NoError(t, err, "Verify of 131072 zero blocks")
	// The decoded pages (16 cached) and one block buffer.
	require.Less(t, n, uint64(64<<20))
}

// TestSetDerivesOneKey: files of one set that name different key
// derivation parameters fail the set before a second scrypt run.
func TestSetDerivesOneKey(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a", "b"} {
		disk := make([]byte, 8192)
		_, err := WriteFull(context.Background(), filepath.Join(dir, name+FileExt), Machine{Hostname: name},
			[]DiskSource{{Info: DiskInfo{Size: int64(len(disk)), SectorSize: 512}, Content: bytes.NewReader(disk)}},
			&WriterOptions{Passphrase: []byte("pw"), ScryptN: 16, BlockSize: 4096})
		require.NoError(t, err)
	}
	opts := &OpenOptions{Passphrase: []byte("pw")}
	_, err := OpenDir(dir, opts)
	require.ErrorIs(t, err, ErrWrongSet)
	require.ErrorContains(t, err, "key derivation parameters")
	var ce *ChainError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "b"+FileExt, filepath.Base(ce.File))
	require.Len(t, opts.keys.setKeys, 1, "one scrypt run")
}

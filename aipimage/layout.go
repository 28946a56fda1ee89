package aipimage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/bits"
)

// The byte layout is specified in FORMAT.md; the constants below are its
// numbers. All integers are little-endian.

const (
	formatVersion = 1

	headerMagic  = "SBKIMAGE"
	trailerMagic = "SBKTRAIL"
	trailerEnd   = "SBKE"
	blockMagic   = "SBKB"
	pageMagic    = "SBKI"

	headerPrefixLen = 32
	blockHeaderLen  = 32
	indexEntryLen   = 32
	pageHeaderLen   = 16
	dirEntryLen     = 32
	trailerLen      = 96

	entriesPerPage = 2048
	dataAlign      = 4096
)

// Block flags, stored in block headers and index entries.
const (
	flagLZ4       = 1 << 0 // payload is an LZ4 block
	flagZero      = 1 << 1 // block is all zero; no payload
	flagEncrypted = 1 << 2 // payload is nonce || AES-256-GCM(ciphertext || tag)
	knownFlags    = flagLZ4 | flagZero | flagEncrypted
)

// Header flags.
const headerFlagEncrypted = 1 << 0

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

var le = binary.LittleEndian

// encodeHeader returns the header bytes, padded so that data starts at a
// multiple of dataAlign.
func encodeHeader(info *PointInfo) ([]byte, error) {
	meta, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	if len(meta) > maxMetaLength {
		return nil, invalidf("metadata of %d bytes exceeds %d", len(meta), maxMetaLength)
	}
	n := headerPrefixLen + len(meta)
	buf := make([]byte, (n+dataAlign-1)/dataAlign*dataAlign)
	copy(buf, headerMagic)
	le.PutUint16(buf[8:], formatVersion)
	var flags uint16
	if info.Encryption != nil {
		flags |= headerFlagEncrypted
	}
	le.PutUint16(buf[10:], flags)
	le.PutUint32(buf[12:], uint32(len(meta)))
	le.PutUint32(buf[16:], crc(meta))
	le.PutUint32(buf[20:], crc(buf[:20]))
	copy(buf[headerPrefixLen:], meta)
	return buf, nil
}

// headerPrefix is the fixed part of the header.
type headerPrefix struct {
	flags   uint16
	metaLen uint32
	metaCRC uint32
	crc     uint32 // of bytes 0..20, also copied into the trailer
}

// decodeHeaderPrefix checks the fixed 32 bytes. An all-zero prefix is what a
// copy that preallocates its target shows, so it reads as incomplete.
func decodeHeaderPrefix(b []byte) (headerPrefix, error) {
	var h headerPrefix
	if len(b) < headerPrefixLen {
		return h, incompletef("file shorter than its header")
	}
	b = b[:headerPrefixLen]
	if string(b[:8]) != headerMagic {
		switch {
		case bytes.Count(b, []byte{0}) == len(b):
			return h, incompletef("header not written yet")
		case nearMagic(b[:8], headerMagic):
			return h, corruptf("header magic damaged")
		}
		return h, ErrNotImage
	}
	h.crc = le.Uint32(b[20:])
	if crc(b[:20]) != h.crc {
		return h, corruptf("header checksum mismatch")
	}
	if v := le.Uint16(b[8:]); v != formatVersion {
		return h, fmt.Errorf("%w: format version %d", ErrUnsupported, v)
	}
	h.flags = le.Uint16(b[10:])
	if h.flags&^headerFlagEncrypted != 0 {
		return h, fmt.Errorf("%w: header flags %#x", ErrUnsupported, h.flags)
	}
	h.metaLen = le.Uint32(b[12:])
	h.metaCRC = le.Uint32(b[16:])
	if h.metaLen == 0 || h.metaLen > maxMetaLength {
		return h, corruptf("metadata length %d", h.metaLen)
	}
	return h, nil
}

// decodeMeta parses and validates the JSON metadata that follows the prefix.
func decodeMeta(h headerPrefix, meta []byte) (*PointInfo, error) {
	if crc(meta) != h.metaCRC {
		return nil, corruptf("metadata checksum mismatch")
	}
	var info PointInfo
	if err := json.Unmarshal(meta, &info); err != nil {
		return nil, corruptf("metadata: %v", err)
	}
	if err := info.validate(); err != nil {
		return nil, corruptf("metadata: %v", err)
	}
	if (h.flags&headerFlagEncrypted != 0) != (info.Encryption != nil) {
		return nil, corruptf("encryption flag disagrees with metadata")
	}
	return &info, nil
}

// dataStart is where the first block record may begin.
func dataStart(metaLen uint32) int64 {
	n := int64(headerPrefixLen) + int64(metaLen)
	return (n + dataAlign - 1) / dataAlign * dataAlign
}

// indexEntry locates one block. For zero blocks offset and length are 0.
type indexEntry struct {
	block  int64
	offset int64
	length uint32 // stored payload bytes
	flags  uint16
	crc    uint32 // CRC-32C of the stored payload
}

// blockHeader precedes every stored payload and repeats the entry, so that
// an index pointing at the wrong place is caught.
func encodeBlockHeader(b []byte, disk int, e indexEntry) {
	copy(b, blockMagic)
	le.PutUint16(b[4:], uint16(disk))
	le.PutUint16(b[6:], e.flags)
	le.PutUint64(b[8:], uint64(e.block))
	le.PutUint32(b[16:], e.length)
	le.PutUint32(b[20:], e.crc)
	le.PutUint32(b[24:], 0)
	le.PutUint32(b[28:], crc(b[:28]))
}

func checkBlockHeader(b []byte, disk int, e indexEntry) error {
	if len(b) < blockHeaderLen || string(b[:4]) != blockMagic || crc(b[:28]) != le.Uint32(b[28:]) {
		return corruptf("disk %d block %d: bad block header at offset %d", disk, e.block, e.offset)
	}
	if int(le.Uint16(b[4:])) != disk || le.Uint16(b[6:]) != e.flags || int64(le.Uint64(b[8:])) != e.block ||
		le.Uint32(b[16:]) != e.length || le.Uint32(b[20:]) != e.crc {
		return corruptf("disk %d block %d: block header at offset %d disagrees with the index", disk, e.block, e.offset)
	}
	return nil
}

func putIndexEntry(b []byte, e indexEntry) {
	le.PutUint64(b[0:], uint64(e.block))
	le.PutUint64(b[8:], uint64(e.offset))
	le.PutUint32(b[16:], e.length)
	le.PutUint16(b[20:], e.flags)
	le.PutUint16(b[22:], 0)
	le.PutUint32(b[24:], e.crc)
	le.PutUint32(b[28:], 0)
}

// pageRef is one directory entry: an index page of one disk covering blocks
// first..last.
type pageRef struct {
	disk        int
	count       int
	first, last int64
	offset      int64
}

func encodePage(disk int, entries []indexEntry) []byte {
	b := make([]byte, pageHeaderLen+len(entries)*indexEntryLen)
	copy(b, pageMagic)
	le.PutUint16(b[4:], uint16(disk))
	le.PutUint32(b[8:], uint32(len(entries)))
	for i, e := range entries {
		putIndexEntry(b[pageHeaderLen+i*indexEntryLen:], e)
	}
	le.PutUint32(b[12:], crc(b[pageHeaderLen:]))
	return b
}

// decodePage checks an index page against its directory entry and the
// geometry, so that every entry it returns can be read without further
// bounds checks.
func decodePage(b []byte, ref pageRef, info *PointInfo, dataBegin, dataEnd int64) ([]indexEntry, error) {
	if len(b) != pageHeaderLen+ref.count*indexEntryLen || string(b[:4]) != pageMagic {
		return nil, corruptf("index page at %d: bad magic or size", ref.offset)
	}
	if int(le.Uint16(b[4:])) != ref.disk || int(le.Uint32(b[8:])) != ref.count {
		return nil, corruptf("index page at %d: disagrees with directory", ref.offset)
	}
	if crc(b[pageHeaderLen:]) != le.Uint32(b[12:]) {
		return nil, corruptf("index page at %d: checksum mismatch", ref.offset)
	}
	maxStored := uint32(storedBound(info.BlockSize, info.Encryption != nil))
	entries := make([]indexEntry, ref.count)
	for i := range entries {
		p := b[pageHeaderLen+i*indexEntryLen:]
		e := indexEntry{
			block:  int64(le.Uint64(p[0:])),
			offset: int64(le.Uint64(p[8:])),
			length: le.Uint32(p[16:]),
			flags:  le.Uint16(p[20:]),
			crc:    le.Uint32(p[24:]),
		}
		switch {
		case e.block < ref.first || e.block > ref.last || (i > 0 && e.block <= entries[i-1].block):
			return nil, corruptf("index page at %d: entry %d out of order", ref.offset, i)
		case i == 0 && e.block != ref.first, i == ref.count-1 && e.block != ref.last:
			return nil, corruptf("index page at %d: bounds disagree with directory", ref.offset)
		case e.flags&^knownFlags != 0:
			return nil, fmt.Errorf("%w: block flags %#x", ErrUnsupported, e.flags)
		case e.flags&flagZero != 0:
			if e.flags != flagZero || e.length != 0 || e.offset != 0 {
				return nil, corruptf("index page at %d: zero block %d with payload", ref.offset, e.block)
			}
		case e.length == 0 || e.length > maxStored || e.offset < dataBegin ||
			e.offset > dataEnd-blockHeaderLen-int64(e.length): // not e.offset+…: it may overflow
			return nil, corruptf("index page at %d: entry %d (block %d) at offset %d, %d bytes, outside the data [%d, %d)",
				ref.offset, i, e.block, e.offset, e.length, dataBegin, dataEnd)
		case (e.flags&flagEncrypted != 0) != (info.Encryption != nil):
			return nil, corruptf("index page at %d: block %d encryption flag disagrees with header", ref.offset, e.block)
		}
		entries[i] = e
	}
	return entries, nil
}

func encodeDirectory(refs []pageRef) []byte {
	b := make([]byte, len(refs)*dirEntryLen)
	for i, r := range refs {
		p := b[i*dirEntryLen:]
		le.PutUint16(p[0:], uint16(r.disk))
		le.PutUint32(p[4:], uint32(r.count))
		le.PutUint64(p[8:], uint64(r.first))
		le.PutUint64(p[16:], uint64(r.last))
		le.PutUint64(p[24:], uint64(r.offset))
	}
	return b
}

// decodeDirectory checks that pages are grouped by ascending disk, cover
// ascending, disjoint block ranges inside each disk, and lie in the file.
func decodeDirectory(b []byte, info *PointInfo, dataBegin, dataEnd int64) ([]pageRef, error) {
	if len(b)%dirEntryLen != 0 {
		return nil, corruptf("directory of %d bytes is not a whole number of %d-byte entries", len(b), dirEntryLen)
	}
	refs := make([]pageRef, len(b)/dirEntryLen)
	for i := range refs {
		p := b[i*dirEntryLen:]
		r := pageRef{
			disk:   int(le.Uint16(p[0:])),
			count:  int(le.Uint32(p[4:])),
			first:  int64(le.Uint64(p[8:])),
			last:   int64(le.Uint64(p[16:])),
			offset: int64(le.Uint64(p[24:])),
		}
		if r.disk >= len(info.Disks) || r.count < 1 || r.count > entriesPerPage ||
			r.first < 0 || r.last < r.first || r.last >= info.blocks(r.disk) || r.last-r.first+1 < int64(r.count) ||
			r.offset < dataBegin || r.offset > dataEnd-int64(pageHeaderLen+r.count*indexEntryLen) {
			return nil, corruptf("directory entry %d (disk %d, %d entries, blocks %d-%d, page at %d) out of range",
				i, r.disk, r.count, r.first, r.last, r.offset)
		}
		if i > 0 {
			prev := refs[i-1]
			if r.disk < prev.disk || (r.disk == prev.disk && r.first <= prev.last) {
				return nil, corruptf("directory entry %d out of order", i)
			}
		}
		refs[i] = r
	}
	return refs, nil
}

// nearMagic reports whether b differs from magic in a few bits only: a
// damaged magic rather than other data (which matches this closely with a
// probability near 1e-13).
func nearMagic(b []byte, magic string) bool {
	d := 0
	for i := range b {
		d += bits.OnesCount8(b[i] ^ magic[i])
	}
	return d <= 4
}

// trailer closes a complete file.
type trailer struct {
	headerCRC  uint32
	dirOffset  int64
	dirLen     int64
	dirCRC     uint32
	blockCount int64
	storedLen  int64
	sha256     [32]byte // of every byte before the trailer
}

func encodeTrailer(t trailer) []byte {
	b := make([]byte, trailerLen)
	copy(b, trailerMagic)
	le.PutUint16(b[8:], formatVersion)
	le.PutUint32(b[12:], t.headerCRC)
	le.PutUint64(b[16:], uint64(t.dirOffset))
	le.PutUint32(b[24:], uint32(t.dirLen/dirEntryLen))
	le.PutUint32(b[28:], t.dirCRC)
	le.PutUint64(b[32:], uint64(t.blockCount))
	le.PutUint64(b[40:], uint64(t.storedLen))
	copy(b[48:80], t.sha256[:])
	le.PutUint32(b[88:], crc(b[:88]))
	copy(b[92:], trailerEnd)
	return b
}

// decodeTrailer reads the last trailerLen bytes of a file of the given
// size. Without the magic the file is still being written (ErrIncomplete);
// with the magic and a bad checksum it is damaged (ErrCorrupt).
func decodeTrailer(b []byte, size int64, h headerPrefix) (trailer, error) {
	var t trailer
	if len(b) != trailerLen || string(b[:8]) != trailerMagic {
		if len(b) == trailerLen && nearMagic(b[:8], trailerMagic) {
			return t, corruptf("trailer magic at offset %d damaged", size-trailerLen)
		}
		return t, incompletef("no trailer")
	}
	if end := b[trailerLen-4:]; string(end) != trailerEnd {
		// The end marker is written last: a copy that preallocates its
		// target has not reached it yet when it ends in zeros.
		if end[3] != 0 && nearMagic(end, trailerEnd) {
			return t, corruptf("trailer end marker at offset %d damaged", size-4)
		}
		return t, incompletef("trailer not fully written")
	}
	if crc(b[:88]) != le.Uint32(b[88:]) {
		return t, corruptf("trailer checksum mismatch at offset %d", size-trailerLen)
	}
	if v := le.Uint16(b[8:]); v != formatVersion {
		return t, fmt.Errorf("%w: trailer version %d", ErrUnsupported, v)
	}
	t.headerCRC = le.Uint32(b[12:])
	t.dirOffset = int64(le.Uint64(b[16:]))
	t.dirLen = int64(le.Uint32(b[24:])) * dirEntryLen
	t.dirCRC = le.Uint32(b[28:])
	t.blockCount = int64(le.Uint64(b[32:]))
	t.storedLen = int64(le.Uint64(b[40:]))
	copy(t.sha256[:], b[48:80])
	if t.headerCRC != h.crc {
		return t, corruptf("trailer belongs to another header")
	}
	end := size - trailerLen
	if t.dirOffset < dataStart(h.metaLen) || t.dirOffset > end || t.dirLen > end-t.dirOffset || t.dirOffset+t.dirLen != end {
		return t, corruptf("trailer puts the directory at offset %d, %d bytes, but it must end at the trailer (%d)", t.dirOffset, t.dirLen, end)
	}
	return t, nil
}

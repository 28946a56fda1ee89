package aipimage

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"

	"github.com/pierrec/lz4/v4"
)

// storedBound is the largest payload a block of blockSize may store.
func storedBound(blockSize int, encrypted bool) int {
	n := max(lz4.CompressBlockBound(blockSize), blockSize)
	if encrypted {
		n += nonceLen + tagLen
	}
	return n
}

func isZero(b []byte) bool {
	// Comparing against a zero slice uses the vectorised bytes.Equal.
	for len(b) > 0 {
		n := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:n], zeroBlock[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

var zeroBlock = make([]byte, 64<<10)

// blockEncoder turns raw blocks into stored payloads. One per goroutine.
type blockEncoder struct {
	lz    lz4.Compressor
	aead  cipher.AEAD
	point []byte
	aad   []byte
}

// encode returns the flags and stored payload of raw, built in out's
// storage (grown when too small).
func (c *blockEncoder) encode(disk int, block int64, raw, out []byte) (uint16, []byte, error) {
	if isZero(raw) {
		return flagZero, out[:0], nil
	}
	bound := lz4.CompressBlockBound(len(raw)) + nonceLen + tagLen
	if cap(out) < bound {
		out = make([]byte, bound)
	}
	buf := out[:bound]
	room := 0
	if c.aead != nil {
		room = nonceLen
	}
	body := buf[room:]
	var flags uint16
	n, err := c.lz.CompressBlock(raw, body)
	if err != nil {
		return 0, nil, err
	}
	if n > 0 && n < len(raw) {
		flags |= flagLZ4
		body = body[:n]
	} else {
		body = append(body[:0], raw...) // incompressible: store raw
	}
	if c.aead == nil {
		return flags, body, nil
	}
	flags |= flagEncrypted
	nonce := buf[:nonceLen]
	if _, err := rand.Read(nonce); err != nil {
		return 0, nil, err
	}
	c.aad = blockAAD(c.aad, c.point, disk, block, flags)
	sealed := c.aead.Seal(body[:0], nonce, body, c.aad)
	return flags, buf[:nonceLen+len(sealed)], nil
}

// decodeBlock turns a stored payload back into raw bytes in dst, whose
// length is the block's length. It never writes to payload.
func decodeBlock(dst, payload []byte, e indexEntry, disk int, aead cipher.AEAD, point []byte) error {
	if e.flags&flagZero != 0 {
		clear(dst)
		return nil
	}
	if crc(payload) != e.crc {
		return corruptf("disk %d block %d: checksum mismatch in the record at offset %d", disk, e.block, e.offset)
	}
	if e.flags&flagEncrypted != 0 {
		if aead == nil || len(payload) < nonceLen+tagLen {
			return corruptf("disk %d block %d: encrypted payload of the record at offset %d unusable", disk, e.block, e.offset)
		}
		var aadBuf [64]byte
		aad := blockAAD(aadBuf[:0], point, disk, e.block, e.flags)
		// Decrypt into scratch: the payload may be a read-only mapping.
		sp := payloadPool.Get().(*[]byte)
		defer payloadPool.Put(sp)
		plain, err := aead.Open((*sp)[:0], payload[:nonceLen], payload[nonceLen:], aad)
		*sp = plain[:0]
		if err != nil {
			return corruptf("disk %d block %d: authentication of the record at offset %d failed", disk, e.block, e.offset)
		}
		payload = plain
	}
	if e.flags&flagLZ4 == 0 {
		if len(payload) != len(dst) {
			return corruptf("disk %d block %d: the record at offset %d stores %d bytes, want %d", disk, e.block, e.offset, len(payload), len(dst))
		}
		copy(dst, payload)
		return nil
	}
	n, err := lz4.UncompressBlock(payload, dst)
	if err != nil || n != len(dst) {
		return corruptf("disk %d block %d: lz4 payload of the record at offset %d: %d of %d bytes: %v", disk, e.block, e.offset, n, len(dst), err)
	}
	return nil
}

package regf

import (
	"encoding/binary"
	"math/bits"
)

// logEntrySeed is the Marvin32 seed Windows uses for the two hashes of a
// transaction log entry: the bytes 82 EF 4D 88 7A 4E 55 C5 read as one
// big-endian number, whose low half seeds the low lane.
const logEntrySeed = 0x82EF4D887A4E55C5

// marvin32 is Microsoft's Marvin32 hash of b with a 64-bit seed: two
// 32-bit lanes, the low one taking each little-endian word of input, then
// a 0x80 terminator byte after the tail, each step followed by the
// add-rotate-xor mixing round. The result is the two lanes, low lane in
// the low half, as the hashes are stored in log entries.
func marvin32(seed uint64, b []byte) uint64 {
	lo, hi := uint32(seed), uint32(seed>>32)
	mix := func() {
		hi ^= lo
		lo = bits.RotateLeft32(lo, 20)
		lo += hi
		hi = bits.RotateLeft32(hi, 9)
		hi ^= lo
		lo = bits.RotateLeft32(lo, 27)
		lo += hi
		hi = bits.RotateLeft32(hi, 19)
	}
	for len(b) >= 4 {
		lo += binary.LittleEndian.Uint32(b)
		mix()
		b = b[4:]
	}
	var tail uint32 = 0x80
	for i := len(b) - 1; i >= 0; i-- {
		tail = tail<<8 | uint32(b[i])
	}
	lo += tail
	mix()
	mix()
	return uint64(hi)<<32 | uint64(lo)
}

// LogEntryHash is the Marvin32 hash Windows stores in a transaction log
// entry, with the registry's seed. It is exported for tests that write
// log entries.
func LogEntryHash(b []byte) uint64 { return marvin32(logEntrySeed, b) }

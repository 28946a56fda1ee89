package lvm

import "hash/crc32"

// initialCRC is the seed LVM2 uses for every checksum it stores on disk
// (INITIAL_CRC in lib/misc/crc.h).
const initialCRC = 0xf597a6cf

// calcCRC continues an LVM2 checksum over b. LVM2's calc_crc is the
// reflected CRC-32 with polynomial 0xedb88320 but, unlike zlib's crc32,
// it neither inverts the register on entry nor on exit: the caller seeds
// it (with initialCRC) and stores the register as is. crc32.Update
// inverts on both sides, so the register is inverted around it.
func calcCRC(crc uint32, b []byte) uint32 {
	return ^crc32.Update(^crc, crc32.IEEETable, b)
}

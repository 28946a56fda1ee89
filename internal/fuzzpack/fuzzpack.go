// Package fuzzpack packs a file into a fuzz input as its length and its
// runs of non-zero bytes, for the fuzz targets of formats whose files are
// mostly zeros (padding, empty table entries, unused sectors). A fuzzer
// would otherwise carry, mutate and minimize those zeros at every
// execution; packed, a 20 KiB file with 200 meaningful bytes is an input
// of a few hundred bytes, and mutating a run's offset moves a structure.
//
// An input is
//
//	u32 file length (little-endian), at most the caller's limit
//	runs: u32 offset, u16 length, that many bytes
//
// Runs past the file's end are cut, and an input that ends inside a run
// keeps the bytes it has, so that every input unpacks to some file.
package fuzzpack

import "encoding/binary"

// Unpack builds the file in describes, of at most limit bytes.
func Unpack(in []byte, limit int) []byte {
	if len(in) < 4 {
		return nil
	}
	file := make([]byte, min(int64(binary.LittleEndian.Uint32(in)), int64(limit)))
	for in = in[4:]; len(in) >= 6; {
		off, n := int64(binary.LittleEndian.Uint32(in)), int(binary.LittleEndian.Uint16(in[4:]))
		in = in[6:]
		n = min(n, len(in))
		if off < int64(len(file)) {
			copy(file[off:], in[:n])
		}
		in = in[n:]
	}
	return file
}

// Pack describes file as Unpack reads it: its runs of non-zero bytes,
// joined across gaps of fewer than 8 zeros. It panics on a file of 4 GiB
// or more.
func Pack(file []byte) []byte {
	if int64(len(file)) > 1<<32-1 {
		panic("fuzzpack: file too large for a fuzz input")
	}
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(file)))
	for i := 0; i < len(file); {
		if file[i] == 0 {
			i++
			continue
		}
		j, zeros := i, 0
		for j < len(file) && j-i < 0xffff && zeros < 8 {
			if file[j] == 0 {
				zeros++
			} else {
				zeros = 0
			}
			j++
		}
		j -= zeros
		out = binary.LittleEndian.AppendUint32(out, uint32(i))
		out = binary.LittleEndian.AppendUint16(out, uint16(j-i))
		out = append(out, file[i:j]...)
		i = j
	}
	return out
}

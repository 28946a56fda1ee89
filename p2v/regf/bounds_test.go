package regf

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/heapprobe"
)

// amplifiedHive is a 32 KiB hive whose root claims subkeys subkeys listed
// by an ri list of n entries that all name one lf list of n entries,
// each naming the root itself: n×n subkeys from 24 KiB of lists.
func amplifiedHive(t *testing.T, n int, subkeys uint32) []byte {
	t.Helper()
	le := binary.LittleEndian
	b, offs, err := addCells(minimalHive(), []int{4 + 4*n, 4 + 8*n}, false)
	require.NoError(t, err)
	ri := make([]byte, 4+4*n)
	copy(ri, "ri")
	le.PutUint16(ri[2:], uint16(n))
	lf := make([]byte, 4+8*n)
	copy(lf, "lf")
	le.PutUint16(lf[2:], uint16(n))
	for i := range n {
		le.PutUint32(ri[4+4*i:], offs[1])
		le.PutUint32(lf[4+8*i:], 0x20) // the root nk
	}
	fillCell(b, offs[0], ri)
	fillCell(b, offs[1], lf)
	root := b[fileOffset(0x20)+4:]
	le.PutUint32(root[nkSubkeyCount:], subkeys)
	le.PutUint32(root[nkSubkeyList:], offs[0])
	return b
}

// TestSubkeyListAmplification is the regression test of an ri list that
// names one big leaf list many times: reading the subkeys used to
// collect n×n offsets (and parse as many keys) before comparing with
// the key's count.
func TestSubkeyListAmplification(t *testing.T) {
	const n = 2000
	for _, claim := range []uint32{n * n, 100} {
		b := amplifiedHive(t, n, claim)
		h, err := Open(b)
		require.NoError(t, err)
		alloc := heapprobe.Allocated(func() {
			_, err = h.Key(`ROOT\x`)
		})
		require.ErrorIs(t, err, ErrCorrupt, "claim %d", claim)
		require.Less(t, alloc, uint64(256<<10), "claim %d: %v", claim, err)
	}
}

// TestHiveClaimsBounded feeds hives whose headers and cells claim
// enormous sizes and counts: each is refused, or read as far as it
// holds, without allocating what it claims.
func TestHiveClaimsBounded(t *testing.T) {
	le := binary.LittleEndian
	withBase := func(off int, v uint32) []byte {
		b := minimalHive()
		le.PutUint32(b[off:], v)
		fixChecksum(b)
		return b
	}
	bigHbin := minimalHive()
	le.PutUint32(bigHbin[baseBlockSize+8:], 0xfffff000) // hbin size
	bigCell := minimalHive()
	le.PutUint32(bigCell[baseBlockSize+0x20:], 0x80000008) // root nk cell size
	values := minimalHive()
	le.PutUint32(values[fileOffset(0x20)+4+nkValueCount:], 0xffffffff)
	le.PutUint32(values[fileOffset(0x20)+4+nkValueList:], 0x20)

	// A value whose vk claims 2 GiB of data in a small cell.
	bigValue, offs, err := addCells(minimalHive(), []int{4, vkName + 1, 16}, false)
	require.NoError(t, err)
	le.PutUint32(bigValue[fileOffset(0x20)+4+nkValueCount:], 1)
	le.PutUint32(bigValue[fileOffset(0x20)+4+nkValueList:], offs[0])
	fillCell(bigValue, offs[0], le.AppendUint32(nil, offs[1]))
	vk := make([]byte, vkName+1)
	copy(vk, "vk")
	le.PutUint16(vk[vkNameLen:], 1)
	le.PutUint32(vk[vkDataSize:], 0x7fffffff)
	le.PutUint32(vk[vkDataOff:], offs[2])
	le.PutUint32(vk[vkType:], RegBinary)
	le.PutUint16(vk[vkFlags:], valueCompName)
	vk[vkName] = 'v'
	fillCell(bigValue, offs[1], vk)

	for name, b := range map[string][]byte{
		"bins size":     withBase(40, 0xfffff000),
		"root offset":   withBase(36, 0xfffffff8),
		"hbin size":     bigHbin,
		"cell size":     bigCell,
		"value count":   values,
		"value of 2GiB": bigValue,
		"ri×lf subkeys": amplifiedHive(t, 2000, 2000*2000),
	} {
		var err error
		alloc := heapprobe.Allocated(func() {
			var h *Hive
			if h, err = Open(b); err != nil {
				return
			}
			var k *Key
			if k, err = h.Root(); err != nil {
				return
			}
			if _, err = k.Subkeys(); err != nil {
				return
			}
			var v *Value
			if v, err = k.Value("v"); err != nil {
				return
			}
			_, err = v.Bytes()
		})
		require.Error(t, err, name)
		require.True(t, typedError(err), "%s: %v", name, err)
		require.Less(t, alloc, uint64(256<<10), "%s: %v", name, err)
	}
}

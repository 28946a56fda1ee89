package ntfs

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/heapprobe"
)

// TestClaimsBounded feeds volumes whose boot sector and records claim
// enormous sizes and counts: each read is refused, or bounded by what
// the volume holds, without allocating what is claimed.
func TestClaimsBounded(t *testing.T) {
	img := imageWith(t)
	le := binary.LittleEndian
	boot := func(off int, val ...byte) []byte {
		b := append([]byte(nil), img...)
		copy(b[off:], val)
		return b
	}
	// /SYSTEM's $DATA rewritten as one sparse run of 2^40 clusters.
	num, off := dataAttr(t, img, "/SYSTEM")
	sparse := append([]byte(nil), img...)
	rewriteRecord(t, sparse, num, func(r []byte) {
		a := r[off:]
		le.PutUint64(a[0x18:], 1<<40-1) // last VCN
		for _, f := range []int{0x28, 0x30, 0x38} {
			le.PutUint64(a[f:], 1<<40*4096) // allocated, data and initialized sizes
		}
		mp := a[le.Uint16(a[0x20:]):]
		copy(mp, []byte{0x06, 0, 0, 0, 0, 0, 1, 0}) // length 2^40, no LCN: sparse
	})
	// $MFT's $DATA claiming far more than its runs map.
	mftNum, mftOff := uint64(recMFT), 0
	v, err := openBytes(img)
	require.NoError(t, err)
	rec, err := v.readRecord(recMFT)
	require.NoError(t, err)
	mftOff = rec.find(atData, "").off
	bigMFT := append([]byte(nil), img...)
	rewriteRecord(t, bigMFT, mftNum, func(r []byte) {
		for _, f := range []int{0x28, 0x30, 0x38} {
			le.PutUint64(r[mftOff+f:], 1<<50)
		}
	})
	cases := map[string][]byte{
		"sectors per cluster":  boot(0x0D, 0xE0),
		"MFT record size":      boot(0x40, 0x7F),
		"MFT cluster":          boot(0x30, 0, 0, 0, 0, 0, 0, 0, 1),
		"MFT size":             bigMFT,
		"sparse data of 4 PiB": sparse,
	}
	for name, b := range cases {
		var errs []error
		alloc := heapprobe.Allocated(func() {
			v, err := openBytes(b)
			if err != nil {
				errs = append(errs, err)
				return
			}
			f, err := v.Lookup("/SYSTEM")
			if err != nil {
				errs = append(errs, err)
				return
			}
			_, err = f.ReadAll()
			errs = append(errs, err)
			_, err = f.Ranges()
			errs = append(errs, err)
			_, err = f.ReadAt(make([]byte, 4096), f.Size()-4096)
			errs = append(errs, err)
		})
		err := errors.Join(errs...)
		t.Logf("%s: %d bytes allocated; %v", name, alloc, err)
		require.Error(t, err, name)
		require.True(t, errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotNTFS) || errors.Is(err, ErrUnsupported), "%s: %v", name, err)
		require.Less(t, alloc, uint64(1<<20), "%s: %v", name, err)
	}
}

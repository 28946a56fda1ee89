package regf

import (
	"encoding/binary"
	"math/rand"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func smallHive(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/small.hiv")
	require.NoError(t, err)
	return b
}

func fixChecksum(b []byte) {
	binary.LittleEndian.PutUint32(b[checksumOff:], Checksum(b))
}

func TestDirty(t *testing.T) {
	b := smallHive(t)
	p, s := binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])
	require.Equal(t, p, s)
	binary.LittleEndian.PutUint32(b[8:], s+1)
	_, err := Open(b)
	assert.ErrorIs(t, err, ErrDirty, "checksum not updated")
	fixChecksum(b)
	_, err = Open(b)
	assert.ErrorIs(t, err, ErrDirty)
}

func TestNotHive(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("reg"), make([]byte, 8192), []byte("hbin....")} {
		_, err := Open(b)
		assert.ErrorIs(t, err, ErrNotHive)
	}
}

func TestChecksum(t *testing.T) {
	b := make([]byte, 512)
	assert.Equal(t, uint32(1), Checksum(b))
	binary.LittleEndian.PutUint32(b[100:], 0xffffffff)
	assert.Equal(t, uint32(0xfffffffe), Checksum(b))
	binary.LittleEndian.PutUint32(b[100:], 0x12345678)
	assert.Equal(t, uint32(0x12345678), Checksum(b))

	h := smallHive(t)
	h[checksumOff] ^= 1
	_, err := Open(h)
	assert.ErrorIs(t, err, ErrCorrupt)

	// A base block whose XOR is 0 stores 1 (Windows' rule).
	h = smallHive(t)
	binary.LittleEndian.PutUint32(h[0xa8:], 0)
	binary.LittleEndian.PutUint32(h[0xa8:], rawChecksum(h))
	require.Zero(t, rawChecksum(h))
	binary.LittleEndian.PutUint32(h[checksumOff:], 1)
	_, err = Open(h)
	assert.NoError(t, err)
}

func TestUnsupportedVersion(t *testing.T) {
	b := smallHive(t)
	binary.LittleEndian.PutUint32(b[20:], 2)
	fixChecksum(b)
	_, err := Open(b)
	assert.ErrorIs(t, err, ErrUnsupported)
	b = smallHive(t)
	binary.LittleEndian.PutUint32(b[28:], 1) // a log file
	fixChecksum(b)
	_, err = Open(b)
	assert.ErrorIs(t, err, ErrUnsupported)
}

func TestTruncated(t *testing.T) {
	b := smallHive(t)
	for _, n := range []int{4, 100, 511, 4095, 4096, 4097, 4200, 8191, 8192, len(b) - 4096, len(b) - 1} {
		_, err := Open(b[:n])
		assert.Error(t, err, n)
		assert.True(t, typedError(err), "%d: %v", n, err)
	}
	// Trailing bytes after the bins are ignored.
	_, err := Open(append(b, make([]byte, 4096)...))
	assert.NoError(t, err)
}

// exercise runs the reader and an edit over a possibly corrupt hive and
// checks that every error is typed; it must never panic.
func exercise(t testing.TB, b []byte) {
	h, err := Open(b)
	if err != nil {
		if !typedError(err) {
			t.Fatalf("untyped Open error: %v", err)
		}
		return
	}
	if _, _, err := walk(h, 2000); err != nil && !typedError(err) {
		t.Fatalf("untyped walk error: %v", err)
	}
	if _, err := h.ControlSets(); err != nil && !typedError(err) {
		t.Fatalf("untyped ControlSets error: %v", err)
	}
	for _, e := range []struct{ key, name string }{
		{`ControlSet001\Services\pvscsi`, "Start"},
		{`ControlSet001\Services\pvscsi`, "New"},
		{"", "RootValue"},
	} {
		ps, err := h.SetDWORD(e.key, e.name, 7)
		if err != nil {
			if !typedError(err) {
				t.Fatalf("untyped SetDWORD error: %v", err)
			}
			continue
		}
		if _, err := Open(Apply(b, ps)); err != nil && !typedError(err) {
			t.Fatalf("untyped error after edit: %v", err)
		}
	}
	for _, p := range []string{`ControlSet001\Services\New`, `A\B`, `ControlSet001\Services\Many\k`} {
		ps, err := h.CreateKey(p)
		if err != nil {
			if !typedError(err) {
				t.Fatalf("untyped CreateKey error: %v", err)
			}
			continue
		}
		if _, err := Open(Apply(b, ps)); err != nil && !typedError(err) {
			t.Fatalf("untyped error after edit: %v", err)
		}
	}
}

func TestCorruptBytes(t *testing.T) {
	orig := smallHive(t)
	rng := rand.New(rand.NewSource(1))
	step := 3
	if testing.Short() {
		step = 7
	}
	for off := baseBlockSize; off < len(orig); off += step {
		b := append([]byte(nil), orig...)
		b[off] ^= byte(1 + rng.Intn(255))
		exercise(t, b)
	}
	// Base block fields, with the checksum fixed up so they are used.
	for off := 0; off < checksumOff; off++ {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := append([]byte(nil), orig...)
			b[off] ^= x
			fixChecksum(b)
			exercise(t, b)
		}
	}
	// Random multi-byte damage, including 32-bit offsets set to edge values.
	for i := 0; i < 1500; i++ {
		b := append([]byte(nil), orig...)
		for j := 0; j < 1+rng.Intn(4); j++ {
			off := baseBlockSize + rng.Intn(len(b)-baseBlockSize-4)&^3
			v := []uint32{0, 0xffffffff, 0x7fffffff, 0x80000000, uint32(rng.Intn(len(b))), rng.Uint32()}[rng.Intn(6)]
			binary.LittleEndian.PutUint32(b[off:], v)
		}
		exercise(t, b)
	}
}

func TestCorruptStructures(t *testing.T) {
	orig := smallHive(t)
	h, err := Open(orig)
	require.NoError(t, err)
	k, err := h.Key(`ControlSet001\Services\pvscsi`)
	require.NoError(t, err)
	nk := k.Offset() + 4
	vals, err := k.Values()
	require.NoError(t, err)
	vk := vals[0].Offset() + 4
	many, err := h.Key(`ControlSet001\Services\Many`)
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		edit func(b []byte)
		do   func(h *Hive) error
	}{
		{"root offset out of bounds", func(b []byte) { binary.LittleEndian.PutUint32(b[36:], 0x7ffffff0); fixChecksum(b) }, nil},
		{"root offset misaligned", func(b []byte) { binary.LittleEndian.PutUint32(b[36:], 0x24); fixChecksum(b) }, nil},
		{"bins size beyond file", func(b []byte) { binary.LittleEndian.PutUint32(b[40:], 0x100000); fixChecksum(b) }, nil},
		{"hbin signature", func(b []byte) { b[4096] = 'x' }, nil},
		{"zero cell size", func(b []byte) { binary.LittleEndian.PutUint32(b[4096+32:], 0) }, nil},
		{"value list count", func(b []byte) { binary.LittleEndian.PutUint32(b[nk+nkValueCount:], 100000) },
			func(h *Hive) error {
				k, err := h.Key(`ControlSet001\Services\pvscsi`)
				if err != nil {
					return err
				}
				_, err = k.Values()
				return err
			}},
		{"subkey count", func(b []byte) { binary.LittleEndian.PutUint32(b[many.Offset()+4+nkSubkeyCount:], 7) },
			func(h *Hive) error { _, err := h.Key(`ControlSet001\Services\Many\a`); return err }},
		{"vk name length", func(b []byte) { binary.LittleEndian.PutUint16(b[vk+vkNameLen:], 0xffff) },
			func(h *Hive) error {
				k, _ := h.Key(`ControlSet001\Services\pvscsi`)
				_, err := k.Value("Start")
				return err
			}},
		{"inline size > 4", func(b []byte) { binary.LittleEndian.PutUint32(b[vk+vkDataSize:], 0x80000008) },
			func(h *Hive) error {
				k, _ := h.Key(`ControlSet001\Services\pvscsi`)
				v, _ := k.Value("Start")
				_, err := v.DWORD()
				return err
			}},
		{"data offset to free cell", func(b []byte) {
			h, _ := Open(b)
			binary.LittleEndian.PutUint32(b[vk+vkDataSize:], 100)
			binary.LittleEndian.PutUint32(b[vk+vkDataOff:], h.free[0].off)
		}, func(h *Hive) error {
			k, _ := h.Key(`ControlSet001\Services\pvscsi`)
			v, _ := k.Value("Start")
			_, err := v.Bytes()
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte(nil), orig...)
			tc.edit(b)
			h, err := Open(b)
			if tc.do == nil {
				assert.ErrorIs(t, err, ErrCorrupt)
				return
			}
			require.NoError(t, err)
			assert.ErrorIs(t, tc.do(h), ErrCorrupt)
			exercise(t, b)
		})
	}
}

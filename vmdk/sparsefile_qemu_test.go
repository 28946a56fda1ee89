package vmdk

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
)

// openParent opens dir/name as a chain: the backing of its child.
func openParent(t *testing.T, dir, name string) *Chain {
	t.Helper()
	c, err := OpenChain(os.DirFS(dir), name)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// checkSparseChain has qemu and OpenChain read the chain whose leaf is
// dir/leaf: its content (compare), the grains the leaf holds (map) and its
// consistency (check).
func checkSparseChain(t *testing.T, dir, leaf string, m *sparseModel) {
	t.Helper()
	disk := m.disk()
	path := filepath.Join(dir, leaf)
	qemuCompare(t, writeFile(t, dir, "want.raw", disk), path)
	require.Contains(t, string(oracle.Run(t, "qemu-img", "check", path)), "No errors were found")
	require.Equal(t, m.held, qemuMapDepth0(t, path))
	require.True(t, bytes.Equal(disk, readChain(t, dir, leaf)))
	c, err := OpenChain(os.DirFS(dir), leaf)
	require.NoError(t, err)
	defer c.Close()
	held, err := c.Allocated(0)
	require.NoError(t, err)
	require.Equal(t, m.held, held)
}

// TestSparseFileAgainstQemu makes a child with NewSparseChild and
// CreateSparse on top of a flat parent, writes into it in place over three
// sessions with the parent as backing, and has qemu read the chain. Then
// qemu writes into the regions the child has grain tables for, and the
// child opens clean and reads what qemu wrote.
func TestSparseFileAgainstQemu(t *testing.T) {
	oracle.Require(t, "qemu-img")
	oracle.Require(t, "qemu-io")
	r := rand.New(rand.NewPCG(41, 42))
	for _, size := range []int64{64 << 20, 64<<20 + 7*SectorSize} {
		t.Run(strconv.FormatInt(size, 10), func(t *testing.T) {
			dir := t.TempDir()
			disk := mixedDisk(r, size)
			parent := writeFlatBase(t, dir, "sb.vmdk", disk)
			child, err := NewSparseChild("sb.vmdk", parent, "sb-000001-sparse.vmdk")
			require.NoError(t, err)
			text, err := child.MarshalText()
			require.NoError(t, err)
			writeFile(t, dir, "sb-000001.vmdk", text)
			createSparseFile(t, dir, "sb-000001-sparse.vmdk", size)
			m := newSparseModel(disk)
			checkSparseChain(t, dir, "sb-000001.vmdk", m)
			backing := openParent(t, dir, "sb.vmdk")
			for session := range 3 {
				s, f := openSparseFile(t, dir, "sb-000001-sparse.vmdk")
				require.Equal(t, m.held, s.Allocated(), "session %d: reopened", session)
				s.SetBacking(backing)
				m.randomWrites(s, t, r)
				m.check(t, s)
				require.NoError(t, f.Close())
				checkSparseChain(t, dir, "sb-000001.vmdk", m)
			}
			info := qemuChain(t, filepath.Join(dir, "sb-000001.vmdk"))
			require.Len(t, info, 2)
			require.Equal(t, CreateTwoGbSparse, info[0].FormatSpecific.Data.CreateType)
			require.Equal(t, int64(parent.CID), info[0].FormatSpecific.Data.ParentCID)
			require.Equal(t, int64(child.CID), info[0].FormatSpecific.Data.CID)
			require.Equal(t, "sb.vmdk", info[0].BackingFile)

			// qemu writes (a grain table entry and its redundant copy) only
			// where a region has its table: in a region without one it
			// writes over the header (qemu 7.2), so only those are used.
			s, f := openSparseFile(t, dir, "sb-000001-sparse.vmdk")
			var cmds []string
			for region, e := range s.gd {
				if e == 0 {
					continue
				}
				base := int64(region) * sparseRegion
				for i, w := range []Range{{Off: base + 5*SectorSize, Len: 70000 / SectorSize * SectorSize}, {Off: base + 19<<20 + 3*SectorSize, Len: 4096}} {
					if w.End() > size {
						continue
					}
					p := byte(0x50 + 2*region + i)
					cmds = append(cmds, "-c", fmt.Sprintf("write -P %d %d %d", p, w.Off, w.Len))
					m.wrote(bytes.Repeat([]byte{p}, int(w.Len)), w.Off)
				}
			}
			require.NoError(t, f.Close())
			require.NotEmpty(t, cmds)
			oracle.Run(t, "qemu-io", append(cmds, "-f", "vmdk", filepath.Join(dir, "sb-000001.vmdk"))...)
			s, f = openSparseFile(t, dir, "sb-000001-sparse.vmdk")
			defer f.Close()
			require.Empty(t, s.stale, "qemu keeps the redundant tables in step")
			m.check(t, s)
			checkSparseChain(t, dir, "sb-000001.vmdk", m)
		})
	}
}

// qemuModel builds the model of a link qemu made: the parent's content as
// qemu reads it (zeros for a base), the link's own grains from qemu-img
// map and its content where it holds them.
func qemuModel(t *testing.T, parentRaw []byte, path string) *sparseModel {
	t.Helper()
	content := qemuRaw(t, path)
	m := newSparseModel(parentRaw)
	m.held = qemuMapDepth0(t, path)
	for _, h := range m.held {
		copy(m.own[h.Off:h.End()], content[h.Off:h.End()])
	}
	require.True(t, bytes.Equal(content, m.disk()))
	return m
}

// TestSparseFileQemuMade opens extents qemu made, writes into them and has
// qemu read them: a monolithicSparse base converted from a raw disk, a
// child qemu-img created and qemu-io wrote to, and a child with zeroed
// grains (version 2), whose partial writes fill with zeros, not the
// parent.
func TestSparseFileQemuMade(t *testing.T) {
	oracle.Require(t, "qemu-img")
	oracle.Require(t, "qemu-io")
	r := rand.New(rand.NewPCG(43, 44))
	dir := t.TempDir()
	size := int64(64<<20 + 3*SectorSize)
	raw := writeFile(t, dir, "disk.raw", mixedDisk(r, size))
	base := filepath.Join(dir, "base.vmdk")
	oracle.Run(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicSparse", raw, base)

	t.Run("base", func(t *testing.T) {
		m := qemuModel(t, make([]byte, size), base)
		head, err := os.ReadFile(base)
		require.NoError(t, err)
		desc, err := EmbeddedDescriptor(head[:64<<10])
		require.NoError(t, err)
		for range 2 {
			s, f := openSparseFile(t, dir, "base.vmdk")
			m.check(t, s)
			m.randomWrites(s, t, r)
			m.check(t, s)
			require.NoError(t, f.Close())
			checkSparseChain(t, dir, "base.vmdk", m)
		}
		head, err = os.ReadFile(base)
		require.NoError(t, err)
		again, err := EmbeddedDescriptor(head[:64<<10])
		require.NoError(t, err)
		require.Equal(t, desc, again, "the embedded descriptor is left alone")
	})

	parentRaw := qemuRaw(t, base)
	for _, kind := range []string{"child", "zeroed-grain"} {
		t.Run(kind, func(t *testing.T) {
			name := kind + ".vmdk"
			path := filepath.Join(dir, name)
			args := []string{"create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk"}
			if kind == "zeroed-grain" {
				args = append(args, "-o", "zeroed_grain=on")
			}
			oracle.Run(t, "qemu-img", append(args, path)...)
			cmds := []string{"-c", "write -P 0x55 0 512", "-c", "write -P 0x56 100000 70000", "-c", "write -P 0x57 33553920 1024"}
			if kind == "zeroed-grain" {
				cmds = append(cmds, "-c", "write -z 1048576 196608", "-c", "write -z 34603008 65536")
			}
			oracle.Run(t, "qemu-io", append(cmds, "-f", "vmdk", path)...)
			m := qemuModel(t, parentRaw, path)
			backing := openParent(t, dir, "base.vmdk")
			if kind == "zeroed-grain" {
				require.True(t, contains(m.held, 1<<20) && isZero(m.own[1<<20:1<<20+196608]))
				// Partial writes into zero grains: the rest stays zero.
				s, f := openSparseFile(t, dir, name)
				require.True(t, s.zeroGrain)
				s.SetBacking(backing)
				m.write(s, t, r, 1<<20+3*SectorSize, 1024)
				m.write(s, t, r, 34603008+streamGrainSize-SectorSize, 2*SectorSize)
				require.NoError(t, f.Close())
				require.True(t, isZero(m.own[1<<20:1<<20+3*SectorSize]))
			}
			for range 2 {
				s, f := openSparseFile(t, dir, name)
				m.check(t, s)
				s.SetBacking(backing)
				m.randomWrites(s, t, r)
				m.check(t, s)
				require.NoError(t, f.Close())
				checkSparseChain(t, dir, name, m)
			}
		})
	}
}

// TestSparseFileHuge: a 3 TiB extent written near its start and end stays
// small, and OpenChain reads it over a 3 TiB parent. The heap the test
// allocates is logged (run with -v).
func TestSparseFileHuge(t *testing.T) {
	const capacity = 3 << 40
	dir := t.TempDir()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	parent := BaseDescriptor(CreateVMFS, ExtentVMFS, "big-flat.vmdk", capacity, "")
	text, err := parent.MarshalText()
	require.NoError(t, err)
	writeFile(t, dir, "big.vmdk", text)
	flat, err := os.Create(filepath.Join(dir, "big-flat.vmdk"))
	require.NoError(t, err)
	require.NoError(t, flat.Truncate(capacity)) // a hole: reads as zeros
	require.NoError(t, flat.Close())
	child, err := NewSparseChild("big.vmdk", parent, "big-000001-sparse.vmdk")
	require.NoError(t, err)
	text, err = child.MarshalText()
	require.NoError(t, err)
	writeFile(t, dir, "big-000001.vmdk", text)
	createSparseFile(t, dir, "big-000001-sparse.vmdk", capacity)

	writes := []Range{
		{Off: 0, Len: SectorSize},
		{Off: 5<<20 + 512, Len: 200 << 10},
		{Off: 1<<40 - 4096, Len: 8192},
		{Off: capacity - sparseRegion - 1024, Len: 4096},
		{Off: capacity - 3*SectorSize, Len: 3 * SectorSize},
	}
	var want []Range
	for session := range 2 {
		s, f := openSparseFile(t, dir, "big-000001-sparse.vmdk")
		require.Equal(t, int64(capacity), s.Capacity())
		require.Equal(t, want, s.Allocated(), "session %d", session)
		for i, w := range writes {
			p := bytes.Repeat([]byte{byte(0x10*session + i + 1)}, int(w.Len))
			_, err := s.WriteAt(p, w.Off)
			require.NoError(t, err)
			got := make([]byte, w.Len)
			_, err = s.ReadAt(got, w.Off)
			require.NoError(t, err)
			require.Equal(t, p, got)
			lo := w.Off / streamGrainSize * streamGrainSize
			want = normalize(append(want, Range{Off: lo, Len: min(ceilDiv(w.End(), streamGrainSize)*streamGrainSize, capacity) - lo}))
		}
		require.Equal(t, want, s.Allocated())
		require.Less(t, s.Size(), int64(4<<20), "a few grains in a 3 TiB extent")
		require.NoError(t, f.Close())
	}
	chain, err := OpenChain(os.DirFS(dir), "big-000001.vmdk")
	require.NoError(t, err)
	defer chain.Close()
	held, err := chain.Allocated(0)
	require.NoError(t, err)
	require.Equal(t, want, held)
	for i, w := range writes {
		if w.Off == 0 || w.End() == capacity {
			continue
		}
		got := make([]byte, w.Len+2*SectorSize)
		_, err := chain.ReadAt(got, w.Off-SectorSize)
		require.NoError(t, err)
		require.Equal(t, bytes.Repeat([]byte{byte(0x10 + i + 1)}, int(w.Len)), got[SectorSize:SectorSize+w.Len])
		require.True(t, isZero(got[:SectorSize]), "the parent's zeros fill the grain")
	}
	st, err := os.Stat(filepath.Join(dir, "big-000001-sparse.vmdk"))
	require.NoError(t, err)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("3 TiB extent: %d bytes, %d ranges of grains; the test allocated %d KiB in all, heap in use now %d KiB",
		st.Size(), len(want), (after.TotalAlloc-before.TotalAlloc)>>10, after.HeapInuse>>10)
}

// TestSparseFileHugeQemu: qemu reads a 3 TiB child made by CreateSparse
// and NewSparseChild near its start and its end, and finds it consistent.
func TestSparseFileHugeQemu(t *testing.T) {
	oracle.Require(t, "qemu-img")
	oracle.Require(t, "qemu-io")
	const capacity = 3 << 40
	dir := t.TempDir()
	parent := BaseDescriptor(CreateVMFS, ExtentVMFS, "big-flat.vmdk", capacity, "")
	text, err := parent.MarshalText()
	require.NoError(t, err)
	writeFile(t, dir, "big.vmdk", text)
	flat, err := os.Create(filepath.Join(dir, "big-flat.vmdk"))
	require.NoError(t, err)
	require.NoError(t, flat.Truncate(capacity))
	_, err = flat.WriteAt(bytes.Repeat([]byte{0x99}, 1<<20), capacity-1<<20)
	require.NoError(t, err)
	require.NoError(t, flat.Close())
	child, err := NewSparseChild("big.vmdk", parent, "big-000001-sparse.vmdk")
	require.NoError(t, err)
	text, err = child.MarshalText()
	require.NoError(t, err)
	writeFile(t, dir, "big-000001.vmdk", text)
	createSparseFile(t, dir, "big-000001-sparse.vmdk", capacity)
	s, f := openSparseFile(t, dir, "big-000001-sparse.vmdk")
	s.SetBacking(openParent(t, dir, "big.vmdk"))
	for _, w := range []Range{{Off: 4096, Len: 4096}, {Off: capacity - 4*SectorSize, Len: 2 * SectorSize}} {
		_, err := s.WriteAt(bytes.Repeat([]byte{0x42}, int(w.Len)), w.Off)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	leaf := filepath.Join(dir, "big-000001.vmdk")
	require.Contains(t, string(oracle.Run(t, "qemu-img", "check", leaf)), "No errors were found")
	oracle.Run(t, "qemu-io", "-r", "-f", "vmdk",
		"-c", "read -P 0 0 4096", "-c", "read -P 0x42 4096 4096", "-c", "read -P 0 8192 57344",
		"-c", fmt.Sprintf("read -P 0x99 %d %d", capacity-64<<10, 64<<10-4*SectorSize),
		"-c", fmt.Sprintf("read -P 0x42 %d 1024", capacity-4*SectorSize),
		"-c", fmt.Sprintf("read -P 0x99 %d 1024", capacity-2*SectorSize),
		leaf)
}

// TestSparseChildCreateType: qemu reads a stand-alone descriptor naming
// one SPARSE extent as twoGbMaxExtentSparse, whatever the extent's size,
// and refuses it as monolithicSparse (a single file with its descriptor
// embedded): why NewSparseChild says twoGbMaxExtentSparse.
func TestSparseChildCreateType(t *testing.T) {
	oracle.Require(t, "qemu-img")
	dir := t.TempDir()
	parent := writeFlatBase(t, dir, "sb.vmdk", make([]byte, 4<<20))
	child, err := NewSparseChild("sb.vmdk", parent, "sb-000001-sparse.vmdk")
	require.NoError(t, err)
	require.Equal(t, CreateTwoGbSparse, child.CreateType)
	require.Equal(t, parent.CID, child.ParentCID)
	require.NotEqual(t, parent.CID, child.CID)
	require.Equal(t, []Extent{{Access: "RW", Sectors: 8192, Type: ExtentSparse, File: "sb-000001-sparse.vmdk"}}, child.Extents)
	createSparseFile(t, dir, "sb-000001-sparse.vmdk", 4<<20)
	for _, ct := range []string{CreateTwoGbSparse, CreateMonolithicSparse} {
		child.CreateType = ct
		text, err := child.MarshalText()
		require.NoError(t, err)
		leaf := writeFile(t, dir, "sb-000001.vmdk", text)
		out, err := oracle.Output("qemu-img", "info", leaf)
		if ct == CreateMonolithicSparse {
			require.Error(t, err)
			require.Contains(t, string(out), "Unsupported image type")
			continue
		}
		require.NoError(t, err, "%s", out)
	}

	for _, bad := range []struct {
		name, ext string
		parent    *Descriptor
	}{{"", "x", parent}, {"sb.vmdk", "", parent}, {"sb.vmdk", "x", nil}} {
		_, err := NewSparseChild(bad.name, bad.parent, bad.ext)
		require.ErrorIs(t, err, ErrInvalidInput)
	}
	_, err = NewSparseChild("sb.vmdk", parent, "a\"b")
	require.ErrorIs(t, err, ErrInvalidInput)
	huge := BaseDescriptor(CreateVMFS, ExtentVMFS, "h-flat.vmdk", 1<<49+512, "")
	_, err = NewSparseChild("h.vmdk", huge, "h-000001-sparse.vmdk")
	require.ErrorIs(t, err, ErrTooLarge)
}

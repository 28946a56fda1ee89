package regf

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hivexml returns hivexml's dump of the hive with the byte_runs (cell
// offsets) removed, one element per line.
func hivexml(t *testing.T, path string) []string {
	t.Helper()
	oracle.Require(t, "hivexml")
	out := string(oracle.Run(t, "hivexml", path))
	out = regexp.MustCompile(`<byte_runs>.*?</byte_runs>`).ReplaceAllString(out, "")
	out = strings.ReplaceAll(out, "></value>", "/>")
	out = strings.ReplaceAll(out, "><", ">\n<")
	return strings.Split(out, "\n")
}

// diffLines returns the lines of b not in a and of a not in b (multiset).
func diffLines(a, b []string) (added, removed []string) {
	count := map[string]int{}
	for _, l := range a {
		count[l]++
	}
	for _, l := range b {
		if count[l] > 0 {
			count[l]--
		} else {
			added = append(added, l)
		}
	}
	for _, l := range a {
		if count[l] > 0 {
			count[l]--
			removed = append(removed, l)
		}
	}
	return
}

func changedBytes(a, b []byte) []int {
	var out []int
	for i := range a {
		if a[i] != b[i] {
			out = append(out, i)
		}
	}
	return out
}

func TestSetDWORDExisting(t *testing.T) {
	for _, tc := range []struct {
		key  string
		old  uint32
		want uint32
	}{
		{`ControlSet001\Services\pvscsi`, 3, 0},          // inline data
		{cellDWORD, 0, 0x12345678},                       // data in a data cell
		{`ControlSet001\Services\weird™`, 6, 0xfffffffe}, // UTF-16 value name
	} {
		t.Run(tc.key, func(t *testing.T) {
			b := buildSystem(t)
			h, err := Open(b)
			require.NoError(t, err)
			name := "Start"
			if strings.HasSuffix(tc.key, "™") {
				name = "symbols €"
			}
			ps, err := h.SetDWORD(tc.key, name, tc.want)
			require.NoError(t, err)
			require.Len(t, ps, 1)
			assert.Len(t, ps[0].Data, 4)
			assert.Contains(t, ps[0].Why, name)
			nb := Apply(b, ps)
			assert.Len(t, changedBytes(b, nb), 4-countEqualBytes(tc.old, tc.want))
			for _, i := range changedBytes(b, nb) {
				assert.True(t, int64(i) >= ps[0].Offset && int64(i) < ps[0].Offset+4)
			}

			h2, err := Open(nb)
			require.NoError(t, err)
			k, err := h2.Key(tc.key)
			require.NoError(t, err)
			v, err := k.Value(name)
			require.NoError(t, err)
			got, err := v.DWORD()
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)

			// The Hive saw its own edit.
			k, err = h.Key(tc.key)
			require.NoError(t, err)
			v, err = k.Value(name)
			require.NoError(t, err)
			got, err = v.DWORD()
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)

			path := writeHive(t, nb)
			lines := strings.Join(hivexDump(t, path, []string{tc.key})[tc.key].Values, "\n")
			assert.Contains(t, lines, `"`+name+`"=dword:`+hex8(tc.want))
			if name == "Start" {
				assert.Equal(t, itoa32(tc.want), hivexget(t, path, tc.key, name))
			}
		})
	}
}

func countEqualBytes(a, b uint32) int {
	n := 0
	for i := 0; i < 4; i++ {
		if byte(a>>(8*i)) == byte(b>>(8*i)) {
			n++
		}
	}
	return n
}

func hex8(v uint32) string {
	const digits = "0123456789abcdef"
	var s [8]byte
	for i := 7; i >= 0; i-- {
		s[i] = digits[v&15]
		v >>= 4
	}
	return string(s[:])
}

// itoa32 formats v as hivexget does (a signed int32).
func itoa32(v uint32) string {
	return strings.TrimSpace(strings.ReplaceAll(string(appendInt(nil, int64(int32(v)))), " ", ""))
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	if v >= 10 {
		b = appendInt(b, v/10)
	}
	return append(b, byte('0'+v%10))
}

func TestSetDWORDNew(t *testing.T) {
	for _, tc := range []struct {
		desc, key, name string
		moved           bool // the value list moves to a new cell
	}{
		{"spare room in the value list", `ControlSet001\Services\pvscsi`, "Tag", false},
		{"list of 2 with spare", `ControlSet001\Services\LSI_SAS`, "ErrorControl", false},
		{"full list, new list cell", `ControlSet001\Services\iaStorV`, "ErrorControl", true},
		{"no values yet", `ControlSet001\Services\NoValues`, "Start", true},
		{"default value", `ControlSet001\Services\iaStorV`, "", true},
		{"UTF-16 name", unicodeKey, "Ünï€ode", false},
		{"key under ri", manyKey + `\k450`, "Start", true},
		{"root key", "", "Flag", true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			path, b := writeSystem(t)
			h, err := Open(b)
			require.NoError(t, err)
			before, order, err := walk(h, 1<<20)
			require.NoError(t, err)

			ps, err := h.SetDWORD(tc.key, tc.name, 0xc0ffee)
			require.NoError(t, err)
			for _, p := range ps {
				assert.GreaterOrEqual(t, p.Offset, int64(baseBlockSize), "base block untouched: %s", p.Why)
				assert.NotEmpty(t, p.Why)
			}
			for i := 1; i < len(ps); i++ {
				assert.Greater(t, ps[i].Offset, ps[i-1].Offset+int64(len(ps[i-1].Data)), "sorted, disjoint")
			}
			nb := Apply(b, ps)
			require.Len(t, nb, len(b))
			assert.Equal(t, b[:baseBlockSize], nb[:baseBlockSize])

			// The value list moved or not; an old list cell is now free.
			k0, err := Open(b)
			require.NoError(t, err)
			oldK, err := k0.Key(tc.key)
			require.NoError(t, err)
			h2, err := Open(nb)
			require.NoError(t, err)
			newK, err := h2.Key(tc.key)
			require.NoError(t, err)
			oldList, newList := le32(oldK.nk, nkValueList), le32(newK.nk, nkValueList)
			assert.Equal(t, tc.moved, oldList != newList)
			if tc.moved && oldK.ValueCount() > 0 {
				assert.Positive(t, int32(binary.LittleEndian.Uint32(nb[fileOffset(oldList):])), "old list cell freed")
			}
			assert.Equal(t, oldK.ValueCount()+1, newK.ValueCount())

			// Our reader: everything as before plus one value.
			after, _, err := walk(h2, 1<<20)
			require.NoError(t, err)
			display := tc.name
			if display == "" {
				display = "@"
			}
			newLine := `"` + display + `"=dword:00c0ffee`
			want := before[tc.key]
			want.Values = append(append([]string(nil), want.Values...), newLine)
			before[tc.key] = want
			assert.Equal(t, before, after)

			// hivexsh and hivexget see the same.
			npath := writeHive(t, nb)
			theirs := hivexDump(t, npath, order)
			for _, p := range order {
				assert.Equal(t, before[p], theirs[p], "hivexsh, key %q", p)
			}
			if tc.key != "" && !strings.ContainsAny(tc.name, "Ü€") {
				assert.Equal(t, "12648430", hivexget(t, npath, tc.key, tc.name))
			}

			// hivexml: one new value element, nothing else changed.
			added, removed := diffLines(hivexml(t, path), hivexml(t, npath))
			assert.Empty(t, removed)
			require.Len(t, added, 1)
			assert.Contains(t, added[0], `value="12648430"`)
		})
	}
}

func TestSetDWORDChained(t *testing.T) {
	path, b := writeSystem(t)
	_ = path
	h, err := Open(b)
	require.NoError(t, err)
	var all []Patch
	for i, step := range []struct {
		key, name string
	}{
		{`ControlSet001\Services\iaStorV`, "A"},
		{`ControlSet001\Services\iaStorV`, "B"},
		{`ControlSet001\Services\iaStorV`, "Start"},
		{`ControlSet001\Services\iaStorV`, "C"},
		{`ControlSet002\Services\pvscsi`, "Start"},
		{`ControlSet001\Services\NoValues`, "D"},
	} {
		ps, err := h.SetDWORD(step.key, step.name, uint32(100+i))
		require.NoError(t, err, step)
		all = append(all, ps...)
	}
	nb := Apply(b, all)
	npath := writeHive(t, nb)
	got := hivexDump(t, npath, []string{`ControlSet001\Services\iaStorV`, `ControlSet002\Services\pvscsi`, `ControlSet001\Services\NoValues`})
	assert.Equal(t, []string{`"Start"=dword:00000066`, `"A"=dword:00000064`, `"B"=dword:00000065`, `"C"=dword:00000067`},
		got[`ControlSet001\Services\iaStorV`].Values)
	assert.Equal(t, []string{`"Start"=dword:00000068`}, got[`ControlSet002\Services\pvscsi`].Values)
	assert.Equal(t, []string{`"D"=dword:00000069`}, got[`ControlSet001\Services\NoValues`].Values)
	h2, err := Open(nb)
	require.NoError(t, err)
	_, _, err = walk(h2, 1<<20)
	require.NoError(t, err)
}

// fillFree marks every free cell allocated, leaving no room.
func fillFree(t *testing.T, b []byte) []byte {
	h, err := Open(b)
	require.NoError(t, err)
	b = append([]byte(nil), b...)
	for _, f := range h.free {
		binary.LittleEndian.PutUint32(b[fileOffset(f.off):], uint32(-int32(f.size)))
	}
	return b
}

func TestSetDWORDNoRoom(t *testing.T) {
	b := fillFree(t, buildSystem(t))
	h, err := Open(b)
	require.NoError(t, err)
	assert.Zero(t, h.FreeBytes())
	_, err = h.SetDWORD(`ControlSet001\Services\pvscsi`, "Tag", 1)
	assert.ErrorIs(t, err, ErrNoRoom)
	// In-place edits still work.
	ps, err := h.SetDWORD(`ControlSet001\Services\pvscsi`, "Start", 1)
	require.NoError(t, err)
	assert.Len(t, ps, 1)

	// A vk larger than any free cell.
	h, err = Open(buildSystem(t))
	require.NoError(t, err)
	_, err = h.SetDWORD(`ControlSet001\Services\pvscsi`, strings.Repeat("x", 16000), 1)
	assert.ErrorIs(t, err, ErrNoRoom)
	// The failed edit left the hive as it was.
	k, err := h.Key(`ControlSet001\Services\pvscsi`)
	require.NoError(t, err)
	assert.Equal(t, uint32(6), k.ValueCount())

	// Room for the vk only: a single free cell of exactly the vk's size
	// (4+20+12 bytes rounded to 40). iaStorV's value list is full, so a
	// new list cell is needed too and there is none: nothing is done.
	orig := buildSystem(t)
	h0, err := Open(orig)
	require.NoError(t, err)
	var f freeCell
	for _, c := range h0.free {
		if c.size >= 48 {
			f = c
			break
		}
	}
	require.NotZero(t, f.size)
	b = fillFree(t, orig)
	binary.LittleEndian.PutUint32(b[fileOffset(f.off):], 40)
	binary.LittleEndian.PutUint32(b[fileOffset(f.off+40):], uint32(-int32(f.size-40)))
	h, err = Open(b)
	require.NoError(t, err)
	require.Equal(t, int64(40), h.FreeBytes())
	_, err = h.SetDWORD(`ControlSet001\Services\iaStorV`, "ErrorControl", 1)
	assert.ErrorIs(t, err, ErrNoRoom)
	assert.Equal(t, int64(40), h.FreeBytes())
	k, err = h.Key(`ControlSet001\Services\iaStorV`)
	require.NoError(t, err)
	assert.Equal(t, uint32(1), k.ValueCount())
	// LSI_SAS's list has a spare slot: the vk alone fits, exactly.
	ps, err = h.SetDWORD(`ControlSet001\Services\LSI_SAS`, "ErrorControl", 1)
	require.NoError(t, err)
	assert.Zero(t, h.FreeBytes())
	path := writeHive(t, Apply(b, ps))
	assert.Equal(t, "1", hivexget(t, path, `ControlSet001\Services\LSI_SAS`, "ErrorControl"))
}

func TestSetDWORDErrors(t *testing.T) {
	h, err := Open(buildSystem(t))
	require.NoError(t, err)
	_, err = h.SetDWORD(`ControlSet001\Services\pvscsi`, "ImagePath", 1)
	assert.ErrorIs(t, err, ErrUnsupported)
	_, err = h.SetDWORD(`ControlSet001\Services\missing`, "Start", 1)
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestSetMultiStringRefuses(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "small.hiv"))
	require.NoError(t, err)
	h, err := Open(b)
	require.NoError(t, err)
	_, err = h.SetMultiString(`ControlSet001\Services\pvscsi`, "ImagePath", []string{"x"})
	require.ErrorIs(t, err, ErrUnsupported)
	_, err = h.SetMultiString(`ControlSet001\Services\pvscsi`, "NoSuchValue", nil)
	require.ErrorIs(t, err, ErrNotFound)
}

package regf

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func isASCII(s string) bool {
	for _, c := range []byte(s) {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// checkLists verifies every subkey list of the hive the way Windows
// relies on it: entries sorted by upcased name across the leaves of an
// ri, lh hashes and lf hints right.
func checkLists(t *testing.T, h *Hive) {
	t.Helper()
	_, order, err := walk(h, 1<<20)
	require.NoError(t, err)
	for _, p := range order {
		k, err := h.Key(p)
		require.NoError(t, err)
		if k.SubkeyCount() == 0 {
			continue
		}
		top, err := h.cell(le32(k.nk, nkSubkeyList))
		require.NoError(t, err)
		leaves := []uint32{le32(k.nk, nkSubkeyList)}
		if string(top[:2]) == "ri" {
			leaves = leaves[:0]
			for i := 0; i < int(le16(top, 2)); i++ {
				leaves = append(leaves, le32(top, 4+4*i))
			}
		}
		var names []string
		for _, l := range leaves {
			c, err := h.cell(l)
			require.NoError(t, err)
			sig := string(c[:2])
			stride := 8
			if sig == "li" {
				stride = 4
			}
			for i := 0; i < int(le16(c, 2)); i++ {
				e := c[4+i*stride:]
				nk, err := h.cellSig(le32(e, 0), "nk")
				require.NoError(t, err)
				sk, err := parseKey(h, le32(e, 0), nk)
				require.NoError(t, err)
				switch {
				case !isASCII(sk.name):
					// hivex hashes the UTF-8 bytes of a non-ASCII name
					// (Windows hashes UTF-16 units): not comparable.
				case sig == "lh":
					assert.Equal(t, lhHash(sk.name), le32(e, 4), "lh hash of %q", sk.name)
				case sig == "lf":
					assert.Equal(t, lfHint(sk.name), e[4:8], "lf hint of %q", sk.name)
				}
				names = append(names, sk.name)
			}
		}
		for i := 1; i < len(names); i++ {
			if isASCII(names[i-1]) && isASCII(names[i]) {
				assert.Negative(t, compareNames(names[i-1], names[i]), "order under %q: %q, %q", p, names[i-1], names[i])
			}
		}
	}
}

// hivex's writer keeps lists sorted by upcased ASCII name, as Windows
// does: our order and hash functions must agree with it.
func TestListsOfHivexHive(t *testing.T) {
	h, err := Open(buildSystem(t))
	require.NoError(t, err)
	checkLists(t, h)
	assert.Equal(t, 1, compareNames("LSI_SAS", "Lsia")) // upcased, '_' (0x5f) sorts after 'A'
	assert.Equal(t, 0, compareNames("pvscsi", "PVSCSI"))
	assert.Equal(t, -1, compareNames("k199", "k1995"))
}

func skRefs(t *testing.T, h *Hive, k *Key) uint32 {
	sk, err := h.cellSig(le32(k.nk, nkSecurity), "sk")
	require.NoError(t, err)
	return le32(sk, skRefCount)
}

func TestCreateKey(t *testing.T) {
	for _, tc := range []struct {
		desc  string
		paths []string
	}{
		{"one key in an lh list", []string{`ControlSet001\Services\vmxnet3`}},
		{"nested, from a key without subkeys", []string{`ControlSet001\Services\NoValues\Parameters\Deep\er`}},
		{"ri leaves lh li lf, both ends", []string{manyKey + `\a`, manyKey + `\k050a`, manyKey + `\k250x`, manyKey + `\K250Y`, manyKey + `\k450x`, manyKey + `\zzz`}},
		{"root", []string{`New_Root_Key`}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			path, b := writeSystem(t)
			h, err := Open(b)
			require.NoError(t, err)
			before, order, err := walk(h, 1<<20)
			require.NoError(t, err)
			root, err := h.Root()
			require.NoError(t, err)
			refs := skRefs(t, h, root)

			var all []Patch
			created := 0
			for _, p := range tc.paths {
				ps, err := h.CreateKey(p)
				require.NoError(t, err, p)
				require.NotEmpty(t, ps)
				for _, x := range ps {
					assert.GreaterOrEqual(t, x.Offset, int64(baseBlockSize), x.Why)
				}
				all = append(all, ps...)
				created += strings.Count(p, `\`) + 1 - existingPrefix(before, p)
				// Idempotent.
				again, err := h.CreateKey(p)
				require.NoError(t, err)
				assert.Empty(t, again)
			}
			if strings.Contains(tc.desc, "ri") {
				var inPlace bool
				for _, p := range all {
					inPlace = inPlace || strings.Contains(p.Why, "room in the list cell")
				}
				assert.True(t, inPlace, "the second li insert fits in the moved leaf's spare room")
			}
			nb := Apply(b, all)
			require.Len(t, nb, len(b))
			h2, err := Open(nb)
			require.NoError(t, err)
			checkLists(t, h2)
			after, order2, err := walk(h2, 1<<20)
			require.NoError(t, err)
			assert.Len(t, order2, len(order)+created)
			for _, p := range tc.paths {
				_, err := h2.Key(p)
				assert.NoError(t, err, p)
			}
			root2, err := h2.Root()
			require.NoError(t, err)
			assert.Equal(t, refs+uint32(created), skRefs(t, h2, root2), "sk reference count")

			// Every old key reads the same, but for the new subkeys.
			for _, p := range order {
				want := before[p]
				got := after[p]
				assert.Equal(t, want.Values, got.Values, p)
				assert.Subset(t, got.Subkeys, want.Subkeys, p)
			}

			// hivexsh agrees on everything, new keys included.
			npath := writeHive(t, nb)
			theirs := hivexDump(t, npath, order2)
			for _, p := range order2 {
				assert.Equal(t, theirs[p], after[p], "hivexsh, key %q", p)
			}
			added, removed := diffLines(hivexml(t, path), hivexml(t, npath))
			assert.Empty(t, removed)
			assert.Len(t, added, 2*created) // <node name=...> and </node>

			// A value in a new key.
			ps, err := h.SetDWORD(tc.paths[0], "Start", 2)
			require.NoError(t, err)
			npath = writeHive(t, Apply(nb, ps))
			assert.Equal(t, "2", hivexget(t, npath, tc.paths[0], "Start"))
		})
	}
}

// existingPrefix counts the leading path elements of p that exist in d.
func existingPrefix(d map[string]keyDump, p string) int {
	parts := strings.Split(p, `\`)
	n := 0
	for i := range parts {
		found := false
		for k := range d {
			if strings.EqualFold(k, strings.Join(parts[:i+1], `\`)) {
				found = true
			}
		}
		if !found {
			break
		}
		n++
	}
	return n
}

func TestCreateKeyErrors(t *testing.T) {
	b := buildSystem(t)
	h, err := Open(b)
	require.NoError(t, err)
	ps, err := h.CreateKey(`ControlSet001\Services\pvscsi`)
	require.NoError(t, err)
	assert.Empty(t, ps)
	ps, err = h.CreateKey("")
	require.NoError(t, err)
	assert.Empty(t, ps)
	_, err = h.CreateKey(`ControlSet001\Services\café`)
	assert.ErrorIs(t, err, ErrUnsupported)
	_, err = h.CreateKey(`ControlSet001\` + strings.Repeat("x", 256))
	assert.ErrorIs(t, err, ErrUnsupported)

	// No room: nothing changes, not even the levels that would fit.
	h, err = Open(fillFree(t, b))
	require.NoError(t, err)
	_, err = h.CreateKey(`ControlSet001\Services\A\B`)
	assert.ErrorIs(t, err, ErrNoRoom)
	_, err = h.Key(`ControlSet001\Services\A`)
	assert.ErrorIs(t, err, ErrNotFound)

	// Room for some levels only.
	h0, err := Open(b)
	require.NoError(t, err)
	var f freeCell
	for _, c := range h0.free {
		if c.size >= 256 {
			f = c
			break
		}
	}
	require.NotZero(t, f.size)
	nb := fillFree(t, b)
	binary.LittleEndian.PutUint32(nb[fileOffset(f.off):], 120)
	binary.LittleEndian.PutUint32(nb[fileOffset(f.off+120):], uint32(-int32(f.size-120)))
	h, err = Open(nb)
	require.NoError(t, err)
	_, err = h.CreateKey(`ControlSet001\Services\NoValues\A\B\C`)
	assert.ErrorIs(t, err, ErrNoRoom)
	assert.Equal(t, int64(120), h.FreeBytes())
	_, err = h.Key(`ControlSet001\Services\NoValues\A`)
	assert.ErrorIs(t, err, ErrNotFound)
}

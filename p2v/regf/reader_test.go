package regf

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReaderMatchesHivexsh(t *testing.T) {
	path, b := writeSystem(t)
	h, err := Open(b)
	require.NoError(t, err)
	mine, order, err := walk(h, 1<<20)
	require.NoError(t, err)
	require.Greater(t, len(order), manyCount)
	theirs := hivexDump(t, path, order)
	for _, p := range order {
		assert.Equal(t, theirs[p], mine[p], "key %q", p)
	}
	assert.Len(t, mine[manyKey].Subkeys, manyCount)
}

func TestReaderValues(t *testing.T) {
	path, b := writeSystem(t)
	h, err := Open(b)
	require.NoError(t, err)

	k, err := h.Key(`controlset001\SERVICES\PvScsi`)
	require.NoError(t, err)
	assert.Equal(t, "pvscsi", k.Name())
	start, err := k.Value("START")
	require.NoError(t, err)
	assert.Equal(t, uint32(RegDWORD), start.Type())
	d, err := start.DWORD()
	require.NoError(t, err)
	assert.Equal(t, uint32(3), d)
	assert.Equal(t, "3", hivexget(t, path, `ControlSet001\Services\pvscsi`, "Start"))

	ip, err := k.Value("ImagePath")
	require.NoError(t, err)
	s, err := ip.String()
	require.NoError(t, err)
	assert.Equal(t, `System32\drivers\pvscsi.sys`, s)
	assert.Equal(t, s, hivexget(t, path, `ControlSet001\Services\pvscsi`, "ImagePath"))
	_, err = ip.DWORD()
	assert.ErrorIs(t, err, ErrUnsupported)

	def, err := k.Value("")
	require.NoError(t, err)
	s, err = def.String()
	require.NoError(t, err)
	assert.Equal(t, "VMware PVSCSI", s)

	_, err = k.Value("nope")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = h.Key(`ControlSet001\Services\nope`)
	assert.ErrorIs(t, err, ErrNotFound)

	sa, err := h.Key(cellDWORD)
	require.NoError(t, err)
	v, err := sa.Value("Owners")
	require.NoError(t, err)
	ms, err := v.MultiString()
	require.NoError(t, err)
	assert.Equal(t, []string{"mshdc.inf", "storahci.inf"}, ms)
	v, err = sa.Value("Start")
	require.NoError(t, err)
	assert.False(t, v.inline())
	d, err = v.DWORD()
	require.NoError(t, err)
	assert.Equal(t, uint32(0), d)
	assert.Equal(t, "0", hivexget(t, path, cellDWORD, "Start"))
	v, err = sa.Value("Empty")
	require.NoError(t, err)
	e, err := v.Bytes()
	require.NoError(t, err)
	assert.Empty(t, e)

	// db big data.
	bk, err := h.Key(bigKey)
	require.NoError(t, err)
	blob, err := bk.Value(bigValue)
	require.NoError(t, err)
	assert.Equal(t, uint32(bigSize), blob.Size())
	data, err := blob.Bytes()
	require.NoError(t, err)
	assert.True(t, bytes.Equal(bigData(), data))
	got := []byte(hivexget(t, path, bigKey, bigValue) + "\n")[:bigSize] // lsval <name> writes raw bytes
	assert.True(t, bytes.Equal(bigData(), got), "hivexget Blob")

	// Names in UTF-16 and Latin-1.
	w, err := h.Key(unicodeKey)
	require.NoError(t, err)
	assert.Equal(t, "weird™", w.Name())
	assert.Zero(t, w.Flags()&KeyCompName)
	v, err = w.Value("NAÏVE")
	require.NoError(t, err)
	assert.Equal(t, "naïve", v.Name())
	v, err = w.Value("symbols €")
	require.NoError(t, err)
	d, err = v.DWORD()
	require.NoError(t, err)
	assert.Equal(t, uint32(6), d)

	// ri (lh + li + lf) lookups.
	many, err := h.Key(manyKey)
	require.NoError(t, err)
	subs, err := many.Subkeys()
	require.NoError(t, err)
	require.Len(t, subs, manyCount)
	for _, n := range []string{"k000", "K199", "k200", "k399", "k400", "K599"} {
		_, err := many.Subkey(n)
		assert.NoError(t, err, n)
	}
	_, err = many.Subkey("k600")
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestControlSets(t *testing.T) {
	b := buildSystem(t)
	h, err := Open(b)
	require.NoError(t, err)
	cur, err := h.CurrentControlSet()
	require.NoError(t, err)
	assert.Equal(t, "ControlSet001", cur)
	sets, err := h.ControlSets()
	require.NoError(t, err)
	assert.Equal(t, []string{"ControlSet001", "ControlSet002"}, sets)

	// A hive without Select.
	h, err = Open(minimalHive())
	require.NoError(t, err)
	_, err = h.CurrentControlSet()
	assert.ErrorIs(t, err, ErrNotFound)
}

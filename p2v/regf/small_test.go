package regf

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The committed small hive (example, fuzz seed) reads the same with our
// reader and with hivexsh, including its db value and ri list.
func TestSmallHiveMatchesHivexsh(t *testing.T) {
	b, err := os.ReadFile("testdata/small.hiv")
	require.NoError(t, err)
	h, err := Open(b)
	require.NoError(t, err)
	mine, order, err := walk(h, 1000)
	require.NoError(t, err)
	theirs := hivexDump(t, writeHive(t, b), order)
	assert.Equal(t, theirs, mine)
	assert.Len(t, mine[`ControlSet001\Services\Many`].Subkeys, 6)
	k, err := h.Key(`ControlSet001\Services\Many`)
	require.NoError(t, err)
	c, err := h.cell(le32(k.nk, nkSubkeyList))
	require.NoError(t, err)
	assert.Equal(t, "ri", string(c[:2]))
	k, err = h.Key(`ControlSet001\Services\pvscsi`)
	require.NoError(t, err)
	v, err := k.Value("Blob")
	require.NoError(t, err)
	c, err = h.cell(le32(v.vk, vkDataOff))
	require.NoError(t, err)
	assert.Equal(t, "db", string(c[:2]))
}

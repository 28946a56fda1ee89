package bootpoint

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMetadataRoundTrip(t *testing.T) {
	m := Metadata{SetID: "a", PointID: "b", Sequence: 7, PatchDigest: "d", Library: "x"}
	got, err := ParseMetadata(m.Description())
	require.NoError(t, err)
	m.Kind = metadataKind
	require.Equal(t, m, got)
	_, err = ParseMetadata("taken by hand before patching")
	require.ErrorIs(t, err, ErrNotBootPoint)
}

package regf

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/fuzzimage"
)

// fuzzSeeds are the FuzzOpen seeds, as hives.
func fuzzSeeds(t *testing.T) map[string][]byte {
	return map[string][]byte{
		"minimal": minimalHive(),
		"small":   smallHive(t),
		"notregf": []byte("hbin\x00\x00\x00\x00"),
		// TestSubkeyListAmplification's hive, smaller.
		"regress-ri-amplification": amplifiedHive(t, 250, 250*250),
	}
}

// TestWriteSeeds regenerates testdata/small.hiv (used by the example and
// a seed; it needs hivexsh) and the FuzzOpen seed corpus when
// STANDBYKIT_WRITE_SEEDS=1; otherwise it checks that the committed seeds
// are current.
func TestWriteSeeds(t *testing.T) {
	write := os.Getenv("STANDBYKIT_WRITE_SEEDS") == "1"
	if write {
		require.NoError(t, os.WriteFile(filepath.Join("testdata", "small.hiv"), buildSmall(t), 0o644))
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	for name, hive := range fuzzSeeds(t) {
		seed := fuzzimage.Sparse(hive)
		require.Equal(t, hive, fuzzimage.Decode(seed, fuzzMaxHive).Bytes()[:len(hive)], name)
		path := filepath.Join(dir, name)
		if write {
			require.LessOrEqual(t, len(fuzzimage.FormatCorpusFile(seed)), 16<<10, name)
			require.NoError(t, fuzzimage.WriteCorpusFile(path, seed))
			continue
		}
		got, err := fuzzimage.ReadCorpusFile(path)
		require.NoError(t, err)
		require.True(t, bytes.Equal(seed, got), "%s is stale: run STANDBYKIT_WRITE_SEEDS=1 go test -run TestWriteSeeds ./p2v/regf", path)
	}
}

package regf

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWriteSeeds regenerates testdata/small.hiv (used by the example) and
// the FuzzOpen seed corpus when STANDBYKIT_WRITE_SEEDS=1; it needs
// hivexsh.
func TestWriteSeeds(t *testing.T) {
	if os.Getenv("STANDBYKIT_WRITE_SEEDS") != "1" {
		t.Skip("set STANDBYKIT_WRITE_SEEDS=1 to regenerate testdata")
	}
	small := buildSmall(t)
	require.NoError(t, os.WriteFile(filepath.Join("testdata", "small.hiv"), small, 0o644))
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	seeds := map[string][]byte{
		"minimal": minimalHive(),
		"small":   small,
		"notregf": []byte("hbin\x00\x00\x00\x00"),
	}
	for name, b := range seeds {
		data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		require.LessOrEqual(t, len(data), 64<<10, name)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
	}
}

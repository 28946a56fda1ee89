package aipimage

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A folder that is missing, empty or a file is named in the error, once.
func TestOpenDirNamesTheFolder(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "web01")
	_, err := OpenDir(missing, nil)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Equal(t, missing+": image set folder: no such file or directory", err.Error())

	empty := t.TempDir()
	_, err = OpenDir(empty, nil)
	require.ErrorIs(t, err, ErrNoFullImage)
	require.Equal(t, "aipimage: no full image in set: "+empty+": no image files (*.skimg) in the folder", err.Error())

	file := filepath.Join(empty, "notes.txt")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err = OpenDir(file, nil)
	require.ErrorIs(t, err, ErrInvalidInput)
	require.Contains(t, err.Error(), file+": ")
}

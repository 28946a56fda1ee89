package aipimage

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFirmwareVocabulary(t *testing.T) {
	for s, want := range map[string]Firmware{`"efi"`: FirmwareEFI, `"uefi"`: FirmwareEFI, `"bios"`: FirmwareBIOS} {
		var m Machine
		require.NoError(t, json.Unmarshal([]byte(`{"hostname":"h","firmware":`+s+`}`), &m))
		require.Equal(t, want, m.Firmware, s)
	}
	for _, s := range []string{"", "bios", "efi"} {
		f, err := ParseFirmware(s)
		require.NoError(t, err)
		require.Equal(t, Firmware(s), f)
	}
	_, err := ParseFirmware("uefi")
	require.ErrorIs(t, err, ErrInvalidInput)

	// The writer records only the one vocabulary.
	src := DiskSource{Info: DiskInfo{Size: 4096, SectorSize: 512}, Content: strings.NewReader(strings.Repeat("x", 4096))}
	_, err = WriteFull(t.Context(), filepath.Join(t.TempDir(), "a.skimg"), Machine{Hostname: "h", Firmware: "foo"}, []DiskSource{src}, nil)
	require.True(t, errors.Is(err, ErrInvalidInput), "%v", err)
}

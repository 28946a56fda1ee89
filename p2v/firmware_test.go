package p2v

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/aipimage"
)

// onePoint is a point of one disk whose image set records a firmware.
type onePoint struct {
	disk     []byte
	firmware aipimage.Firmware
}

func (p onePoint) Info() aipimage.PointInfo {
	return aipimage.PointInfo{Machine: aipimage.Machine{Hostname: "h", Firmware: p.firmware},
		Disks: []aipimage.DiskInfo{{Size: int64(len(p.disk)), SectorSize: 512}}}
}
func (p onePoint) Changed(int) ([]aipimage.Extent, error) { return nil, nil }
func (p onePoint) Disk(int) (*io.SectionReader, error) {
	return io.NewSectionReader(bytes.NewReader(p.disk), 0, int64(len(p.disk))), nil
}

// The image set's record decides the firmware only when the boot disk
// cannot: it has no partition table.
func TestFirmwareFallsBackToTheRecord(t *testing.T) {
	sfdisk := requireSfdisk(t)
	blank := make([]byte, 4<<20)
	mbr, _ := makeDisk(t, sfdisk, 64<<20, "label: dos\ntype=83, bootable\n")
	gptESP, _ := makeDisk(t, sfdisk, 64<<20, "label: gpt\nsize=16M, type=U\ntype=L\n")
	for _, c := range []struct {
		name     string
		disk     []byte
		recorded aipimage.Firmware
		want     Firmware
		warning  string
	}{
		{"no table, recorded efi", blank, aipimage.FirmwareEFI, FirmwareEFI, "as the image set records"},
		{"no table, recorded bios", blank, aipimage.FirmwareBIOS, FirmwareBIOS, "as the image set records"},
		{"no table, nothing recorded", blank, aipimage.FirmwareUnknown, FirmwareBIOS, ""},
		{"MBR, recorded efi: the disk wins", mbr, aipimage.FirmwareEFI, FirmwareBIOS, "records efi firmware, but"},
		{"GPT with an ESP, recorded bios", gptESP, aipimage.FirmwareBIOS, FirmwareEFI, "records bios firmware, but"},
		{"GPT with an ESP, recorded efi", gptESP, aipimage.FirmwareEFI, FirmwareEFI, ""},
	} {
		plan, err := Inspector{}.Inspect(context.Background(), onePoint{c.disk, c.recorded})
		require.NoError(t, err, c.name)
		require.Equal(t, c.want, plan.Firmware, c.name)
		warnings := ""
		for _, w := range plan.Warnings {
			warnings += w + "\n"
		}
		if c.warning != "" {
			require.Contains(t, warnings, c.warning, c.name)
		} else {
			require.NotContains(t, warnings, "firmware", c.name)
		}
	}
	_, err := ParseFirmware("uefi")
	require.Error(t, err)
	f, err := ParseFirmware("efi")
	require.NoError(t, err)
	require.Equal(t, FirmwareEFI, f)
}

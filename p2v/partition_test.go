package p2v

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
)

// sfdiskTable is the part of `sfdisk --json` the tests compare with.
type sfdiskTable struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		SectorSize int    `json:"sectorsize"`
		Partitions []struct {
			Node     string `json:"node"`
			Start    int64  `json:"start"`
			Size     int64  `json:"size"`
			Type     string `json:"type"`
			UUID     string `json:"uuid"`
			Name     string `json:"name"`
			Bootable bool   `json:"bootable"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func requireSfdisk(t *testing.T) string { return oracle.Require(t, "sfdisk") }

// makeDisk partitions a new image with sfdisk and returns its bytes and
// sfdisk's own reading of it.
func makeDisk(t *testing.T, sfdisk string, size int64, script string) ([]byte, sfdiskTable) {
	img := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(img, nil, 0o644))
	require.NoError(t, os.Truncate(img, size))
	cmd := exec.Command(sfdisk, "-q", img)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	js, err := exec.Command(sfdisk, "--json", img).Output()
	require.NoError(t, err)
	var tab sfdiskTable
	require.NoError(t, json.Unmarshal(js, &tab))
	data, err := os.ReadFile(img)
	require.NoError(t, err)
	return data, tab
}

func TestPartitionTablesAgreeWithSfdisk(t *testing.T) {
	sfdisk := requireSfdisk(t)
	cases := []struct {
		name, script string
		firmware     Firmware
	}{
		{"gpt-efi", "label: gpt\nsize=16M, type=U, name=\"EFI system\"\nsize=16M, type=E3C9E316-0B5C-4DB8-817D-F92DF00215AE\ntype=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=\"Basic data ünïcode\"\n", FirmwareEFI},
		{"gpt-bios-boot", "label: gpt\nsize=1M, type=21686148-6449-6E6F-744E-656564454649\ntype=L\n", FirmwareBIOS},
		{"mbr-windows", "label: dos\nsize=50M, type=7, bootable\ntype=7\n", FirmwareBIOS},
		{"mbr-logical", "label: dos\nsize=8M, type=83, bootable\nsize=8M, type=8e\ntype=5\nsize=4M, type=83\nsize=4M, type=82\ntype=83\n", FirmwareBIOS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, want := makeDisk(t, sfdisk, 128<<20, tc.script)
			got, err := ReadPartitionTable(bytes.NewReader(data), int64(len(data)), 512)
			require.NoError(t, err)
			require.Equal(t, want.PartitionTable.Label, got.Scheme)
			require.Equal(t, strings.ToLower(want.PartitionTable.ID), strings.ToLower(got.ID))
			require.Equal(t, tc.firmware, got.Firmware())
			require.Len(t, got.Partitions, len(want.PartitionTable.Partitions))
			for i, w := range want.PartitionTable.Partitions {
				g := got.Partitions[i]
				num, _ := strconv.Atoi(w.Node[strings.LastIndexAny(w.Node, "img")+1:])
				require.Equal(t, num, g.Number, "partition %d", i)
				require.Equal(t, w.Start*512, g.Start, "partition %d", i)
				require.Equal(t, w.Size*512, g.Size, "partition %d", i)
				require.Equal(t, strings.ToLower(w.Type), strings.ToLower(g.Type), "partition %d", i)
				require.Equal(t, w.UUID, g.GUID, "partition %d", i)
				require.Equal(t, w.Name, g.Name, "partition %d", i)
				require.Equal(t, w.Bootable, g.Active, "partition %d", i)
			}
		})
	}
}

func TestGPTFallsBackToBackupHeader(t *testing.T) {
	sfdisk := requireSfdisk(t)
	data, want := makeDisk(t, sfdisk, 64<<20, "label: gpt\nsize=16M, type=U\ntype=L\n")
	data[512+20] ^= 0xff // damage the primary header
	got, err := ReadPartitionTable(bytes.NewReader(data), int64(len(data)), 512)
	require.NoError(t, err)
	require.Len(t, got.Partitions, len(want.PartitionTable.Partitions))
	require.NotEmpty(t, got.Warnings)

	last := len(data) - 512
	data[last+20] ^= 0xff // and the backup
	_, err = ReadPartitionTable(bytes.NewReader(data), int64(len(data)), 512)
	require.ErrorIs(t, err, ErrBadPartitionTable)
}

func TestNoPartitionTable(t *testing.T) {
	_, err := ReadPartitionTable(bytes.NewReader(make([]byte, 1<<20)), 1<<20, 512)
	require.ErrorIs(t, err, ErrNoPartitionTable)
	_, err = ReadPartitionTable(bytes.NewReader(nil), 0, 512)
	require.Error(t, err)
}

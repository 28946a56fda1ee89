package p2v

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/standbykit/standbykit/internal/oracle"
	"github.com/standbykit/standbykit/p2v/ntfs"
)

// TestInspectWarnsUncleanVolume: a Windows volume marked dirty, or whose
// journal has operations pending, still gets its fixes, with a warning.
func TestInspectWarnsUncleanVolume(t *testing.T) {
	oracle.Require(t, "ntfsfix")
	software := hive(t, softwareScript)
	system := hive(t, systemScript(false))
	inspect := func(vol []byte) *Plan {
		disk, _ := mbrDisk(t, vol)
		plan, err := Inspector{}.InspectDisks(context.Background(), []Disk{bytes.NewReader(disk)})
		require.NoError(t, err)
		require.NotEmpty(t, plan.Patches)
		return plan
	}
	clean := windowsVolume(t, system, software, false)
	require.Empty(t, inspect(clean).Warnings)

	// Pending journal: mkntfs leaves $LogFile reset (all 0xFF); write two
	// restart pages whose restart area has a client in use and lacks the
	// clean flag, as Windows leaves them when it was not shut down.
	pending := bytes.Clone(clean)
	v, err := ntfs.Open(bytes.NewReader(pending), int64(len(pending)))
	require.NoError(t, err)
	logf, err := v.Lookup("$LogFile")
	require.NoError(t, err)
	rs, err := logf.Ranges()
	require.NoError(t, err)
	for _, page := range []int64{0, 4096} {
		copy(pending[rs[0].Offset+page:], restartPage(0x107dee, logf.Size()))
	}
	warn := strings.Join(inspect(pending).Warnings, "\n")
	require.Contains(t, warn, "has operations in its journal ($LogFile)")
	require.NotContains(t, warn, "marked dirty")

	// ntfsfix empties the journal and marks the volume dirty.
	path := filepath.Join(t.TempDir(), "vol.img")
	require.NoError(t, os.WriteFile(path, pending, 0o644))
	oracle.Run(t, "ntfsfix", path)
	dirty, err := os.ReadFile(path)
	require.NoError(t, err)
	warn = strings.Join(inspect(dirty).Warnings, "\n")
	require.Contains(t, warn, "is marked dirty (Windows will check it at boot)")
	require.NotContains(t, warn, "journal")
}

// restartPage builds a $LogFile restart page (4 KiB, with its update
// sequence array) for a journal of logSize bytes, with the fields a
// Windows 10 volume has, but whose restart area lacks the clean flag
// while the NTFS client is in use: Windows was not shut down.
func restartPage(lsn uint64, logSize int64) []byte {
	le := binary.LittleEndian
	p := make([]byte, 4096)
	copy(p, "RSTR")
	le.PutUint16(p[4:], 0x1e) // update sequence array offset
	le.PutUint16(p[6:], 9)    // its entries: the USN and 8 strides
	le.PutUint32(p[0x10:], 4096)
	le.PutUint32(p[0x14:], 4096)
	le.PutUint16(p[0x18:], 0x30) // restart area offset
	le.PutUint16(p[0x1a:], 1)    // version 1.1
	le.PutUint16(p[0x1c:], 1)
	ra := p[0x30:]
	le.PutUint64(ra, lsn)
	le.PutUint16(ra[0x08:], 1)      // log clients
	le.PutUint16(ra[0x0a:], 0xffff) // free list: none
	le.PutUint16(ra[0x0c:], 0)      // in-use list: client 0
	le.PutUint16(ra[0x0e:], 0)      // flags: not clean
	le.PutUint32(ra[0x10:], 45)     // sequence number bits
	le.PutUint16(ra[0x14:], 0xe0)   // restart area length
	le.PutUint16(ra[0x16:], 0x40)   // client array offset
	le.PutUint64(ra[0x18:], uint64(logSize))
	le.PutUint32(ra[0x20:], 0x70) // last LSN data length
	le.PutUint16(ra[0x24:], 0x30) // log record header length
	le.PutUint16(ra[0x26:], 0x40) // log page data offset
	client := ra[0x40:]
	le.PutUint64(client, lsn)
	le.PutUint64(client[8:], lsn)
	le.PutUint16(client[0x10:], 0xffff)
	le.PutUint16(client[0x12:], 0xffff)
	le.PutUint32(client[0x1c:], 8)
	copy(client[0x20:], []byte{'N', 0, 'T', 0, 'F', 0, 'S', 0})
	const usn = 0x0001
	le.PutUint16(p[0x1e:], usn)
	for i := 1; i <= 8; i++ {
		end := i * 512
		copy(p[0x1e+2*i:], p[end-2:end])
		le.PutUint16(p[end-2:], usn)
	}
	return p
}

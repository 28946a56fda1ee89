package p2v

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/standbykit/standbykit/aipimage"
)

// Disk is a disk to inspect: its content and size.
type Disk interface {
	io.ReaderAt
	Size() int64
}

// Inspector plans the P2V fixups of backup points. Its zero value is ready
// to use; it satisfies bootpoint.Inspector. Inspection is deterministic:
// the same bytes give the same Plan.
type Inspector struct {
	// Controller, when set, is the controller the VM will have whatever
	// the guest's drivers say; the fixups then make its driver boot-start.
	Controller Controller
}

// Inspect plans the fixups of a point from its disks. The firmware the
// image set records for the machine is used when the boot disk does not
// show it (it has no partition table).
func (in Inspector) Inspect(ctx context.Context, p aipimage.Point) (*Plan, error) {
	var disks []Disk
	for d := range p.Info().Disks {
		r, err := p.Disk(d)
		if err != nil {
			return nil, err
		}
		disks = append(disks, r)
	}
	return in.inspect(ctx, disks, p.Info().Machine.Firmware)
}

// InspectDisks plans the fixups of a machine from its disks, disk 0 being
// the boot disk. It reads only metadata: partition tables, file-system
// structures and the files it needs. A disk it cannot make sense of gives
// a warning, not an error: the plan then keeps default hardware.
func (in Inspector) InspectDisks(ctx context.Context, disks []Disk) (*Plan, error) {
	return in.inspect(ctx, disks, aipimage.FirmwareUnknown)
}

// inspect plans the fixups of a machine whose image set records the
// given firmware.
func (in Inspector) inspect(ctx context.Context, disks []Disk, recorded aipimage.Firmware) (*Plan, error) {
	plan := &Plan{}
	var vols []volume
	var diskFirmware Firmware
	for d, disk := range disks {
		parts, err := partitions(disk)
		if err != nil {
			plan.warnf("disk %d: %v", d, err)
			continue
		}
		if d == 0 && parts.table != nil {
			diskFirmware = parts.table.Firmware()
		}
		for _, part := range parts.list {
			r := io.NewSectionReader(disk, part.Start, part.Size)
			vols = append(vols, newVolume(d, part, r))
		}
	}
	plan.decideFirmware(diskFirmware, recorded)
	vols = append(vols, logicalVolumes(plan, vols)...)
	found := false
	for _, v := range vols {
		if v.lv != "" {
			continue // Windows does not live on LVM
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ok, err := in.inspectWindows(plan, v.disk, v.part, v.r)
		if err != nil {
			return nil, fmt.Errorf("p2v: disk %d partition %d: %w", v.disk, v.part.Number, err)
		}
		if found = ok; found {
			break
		}
	}
	if !found {
		ok, err := in.inspectLinux(plan, vols)
		if err != nil {
			return nil, fmt.Errorf("p2v: %w", err)
		}
		found = ok
	}
	if !found {
		plan.warnf("no Windows or Linux system found on the disks: the VM gets default hardware and no fixups")
	}
	if _, err := plan.checkPatches(len(disks)); err != nil {
		return nil, err
	}
	return plan, nil
}

type diskParts struct {
	table *PartitionTable
	list  []Partition
}

// partitions lists a disk's partitions; a disk without a partition table
// is one file system.
func partitions(disk Disk) (diskParts, error) {
	t, err := ReadPartitionTable(disk, disk.Size(), 512)
	if errors.Is(err, ErrNoPartitionTable) {
		return diskParts{list: []Partition{{Number: 0, Start: 0, Size: disk.Size()}}}, nil
	}
	if err != nil {
		return diskParts{}, err
	}
	return diskParts{table: t, list: t.Partitions}, nil
}

func (p *Plan) warnf(format string, args ...any) {
	p.Warnings = append(p.Warnings, fmt.Sprintf(format, args...))
}

// checkPatches validates every disk's patches.
func (p *Plan) checkPatches(disks int) (int, error) {
	n := 0
	for d := range disks {
		ps, err := p.DiskPatches(d)
		if err != nil {
			return 0, err
		}
		n += len(ps)
	}
	return n, nil
}

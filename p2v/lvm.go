package p2v

import (
	"io"

	"github.com/standbykit/standbykit/p2v/lvm"
)

// logicalVolumes finds LVM2 physical volumes among the partitions and
// returns their volume groups' logical volumes as volumes whose patches
// land on the right disk bytes.
func logicalVolumes(plan *Plan, parts []volume) []volume {
	type group struct {
		vg  *lvm.VG
		pvs map[string]io.ReaderAt // by PV UUID
		at  map[string]*volume     // partition of each PV, by UUID
	}
	groups := map[string]*group{}
	var order []string
	for i := range parts {
		v := &parts[i]
		pv, err := lvm.ReadPV(v.r, v.part.Size)
		if err != nil || pv.VG == nil {
			continue
		}
		g := groups[pv.VG.Name]
		if g == nil {
			g = &group{vg: pv.VG, pvs: map[string]io.ReaderAt{}, at: map[string]*volume{}}
			groups[pv.VG.Name] = g
			order = append(order, pv.VG.Name)
		}
		g.pvs[pv.UUID], g.at[pv.UUID] = v.r, v
	}
	var out []volume
	for _, name := range order {
		g := groups[name]
		for _, lv := range g.vg.LVs {
			if !lv.Visible() {
				continue
			}
			lr, err := g.vg.Open(lv.Name, g.pvs)
			if err != nil {
				plan.warnf("LVM %s/%s: %v", name, lv.Name, err)
				continue
			}
			r := io.NewSectionReader(lr, 0, lr.Size())
			vg, lvName := g.vg, lv.Name
			v := newVolume(-1, Partition{Size: lr.Size()}, r)
			v.lv = name + "/" + lvName
			v.toDisk = func(off int64, data []byte) ([]Patch, error) {
				var ps []Patch
				for len(data) > 0 {
					pvName, pvOff, contiguous, err := vg.ToPV(lvName, off)
					if err != nil {
						return nil, err
					}
					info, err := vg.PV(pvName)
					if err != nil {
						return nil, err
					}
					at := g.at[info.UUID]
					n := min(int64(len(data)), contiguous)
					ps = append(ps, Patch{Disk: at.disk, Offset: at.part.Start + pvOff, Data: data[:n]})
					data, off = data[n:], off+n
				}
				return ps, nil
			}
			out = append(out, v)
		}
	}
	return out
}

package p2v

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/standbykit/standbykit/p2v/ntfs"
	"github.com/standbykit/standbykit/p2v/regf"
)

// WindowsInfo is what inspection learned of a Windows system.
type WindowsInfo struct {
	ProductName      string // "Windows Server 2019 Standard"
	Build            int    // 17763
	Edition          string // "ServerStandard"
	InstallationType string // "Server", "Client"
	Arch             string // "AMD64", "x86"
	ControlSets      []string
}

// Server tells a server edition from a client one.
func (w WindowsInfo) Server() bool {
	return strings.Contains(w.InstallationType, "Server") || strings.Contains(w.ProductName, "Server")
}

// name is the product name for messages ("Windows Server 2019
// Standard"); ProductName lacks "Windows" on some editions.
func (w WindowsInfo) name() string {
	switch {
	case w.ProductName == "":
		return "Windows"
	case strings.HasPrefix(w.ProductName, "Windows"):
		return w.ProductName
	}
	return "Windows " + w.ProductName
}

// storageDrivers are Windows' boot drivers for the controllers a VM can
// have, in order of preference: VMware's paravirtual driver when the guest
// has it (VMware Tools), then drivers Windows ships.
var storageDrivers = []struct {
	service    string
	controller Controller
}{
	{"pvscsi", ControllerPVSCSI},
	{"LSI_SAS", ControllerLSILogicSAS},
	{"storahci", ControllerSATA},
	{"msahci", ControllerSATA}, // Vista and Server 2008
	{"stornvme", ControllerNVMe},
}

const (
	systemHive   = "Windows/System32/config/SYSTEM"
	softwareHive = "Windows/System32/config/SOFTWARE"
)

// inspectWindows looks for a Windows system on one partition. It returns
// false when there is none (not NTFS, no SYSTEM hive).
func (in Inspector) inspectWindows(plan *Plan, d int, part Partition, r *io.SectionReader) (bool, error) {
	vol, err := ntfs.Open(r, part.Size)
	switch {
	case errors.Is(err, ntfs.ErrBitLocker):
		plan.warnf("disk %d partition %d is BitLocker-encrypted: it cannot be inspected or fixed offline", d, part.Number)
		return false, nil
	case errors.Is(err, ntfs.ErrNotNTFS):
		return false, nil
	case err != nil:
		plan.warnf("disk %d partition %d: damaged NTFS volume: %v", d, part.Number, err)
		return false, nil
	}
	sysFile, err := vol.Lookup(systemHive)
	if errors.Is(err, ntfs.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		plan.warnf("disk %d partition %d: %s: %v", d, part.Number, systemHive, err)
		return false, nil
	}
	warnVolumeState(plan, d, part, vol)
	sysBytes, err := sysFile.ReadAll()
	if err != nil {
		plan.warnf("disk %d partition %d: reading the SYSTEM hive: %v", d, part.Number, err)
		return true, nil
	}
	info := WindowsInfo{}
	if soft, err := readHive(vol, softwareHive); err != nil {
		plan.warnf("SOFTWARE hive: %v: the Windows version is unknown", err)
	} else {
		info.readVersion(soft)
	}
	rec, err := recoverHive(vol, systemHive, sysBytes)
	if err != nil {
		plan.warnf("the SYSTEM hive has changes in its transaction logs not yet applied, and they cannot be replayed (%v): Windows would replay them over any fix, so none is made; the VM may not find its boot disk", err)
		plan.GuestID = info.guestID()
		plan.Controller = in.Controller
		if plan.Controller == "" {
			plan.Controller = ControllerLSILogicSAS
		}
		return true, nil
	}
	for _, d := range rec.Dropped {
		plan.warnf("SYSTEM hive: %s", d)
	}
	hive, err := regf.Open(rec.File)
	if err != nil {
		plan.warnf("SYSTEM hive: %v: no fixups", err)
		return true, nil
	}
	info.Arch = arch(hive)
	plan.GuestID = info.guestID()
	if info.ControlSets, err = hive.ControlSets(); err != nil {
		plan.warnf("SYSTEM hive: control sets: %v: no fixups", err)
		return true, nil
	}
	controller, service := in.chooseController(hive, info.ControlSets[0])
	if service == "" {
		plan.warnf("Windows has no driver for any VM disk controller (pvscsi, LSI SAS, AHCI, NVMe): it will not boot on the VM")
		plan.Controller = ControllerLSILogicSAS
		return true, nil
	}
	plan.Controller = controller
	edits := &hiveEdits{before: sysBytes, after: rec.File, rec: rec}
	startWhy := fmt.Sprintf("%s: make the %s driver boot-start (Start=0) in %s for the VM's %s controller",
		info.name(), service, strings.Join(info.ControlSets, ", "), controller)
	for _, set := range info.ControlSets {
		key := set + `\Services\` + service
		if k, err := hive.Key(key); err != nil || k == nil {
			plan.warnf("%s: missing: the %s driver cannot be made boot-start in %s", key, service, set)
			continue
		}
		if v, err := dword(hive, key, "Start"); err == nil && v == 0 {
			continue // already boot-start
		}
		ps, err := hive.SetDWORD(key, "Start", 0)
		if err != nil {
			plan.warnf("%s\\Start: %v: the VM may not find its boot disk", key, err)
			continue
		}
		edits.apply(ps, startWhy)
	}
	removeMissingFilters(plan, hive, info, edits)
	return true, edits.patches(plan, d, part, sysFile)
}

// hiveEdits chains the edits of one hive, each with its reason. before
// is the hive file as on the volume; after starts as the hive Windows
// would load (its logs replayed, when it was dirty).
type hiveEdits struct {
	before, after []byte
	rec           *regf.Recovery
	steps         []hiveStep
}

type hiveStep struct {
	runs []byteRun
	why  string
}

func (e *hiveEdits) apply(ps []regf.Patch, why string) {
	next := regf.Apply(e.after, ps)
	e.steps = append(e.steps, hiveStep{runs: diffRuns(e.after, next), why: why})
	e.after = next
}

// patches turns the difference between the hive file and its edited copy
// into disk patches through the file's place on the volume, each with the
// reasons of the edits that touched it. Without edits nothing is written,
// even for a dirty hive: Windows replays its own logs. With edits, a
// dirty hive's replayed pages and clean base block are written too, in
// place; a hive the replay grew cannot be, and the plan says so.
func (e *hiveEdits) patches(plan *Plan, d int, part Partition, f *ntfs.File) error {
	if len(e.steps) == 0 {
		return nil
	}
	if e.rec.Grown() {
		var whys []string
		for _, st := range e.steps {
			whys = append(whys, st.why)
		}
		plan.warnf("%s; but the fixes cannot be made offline: replaying the SYSTEM hive's transaction logs grows it from %d to %d bytes, and the file is written in place only (boot the machine once and take a new backup)",
			strings.Join(whys, "; "), len(e.before), len(e.rec.File))
		return nil
	}
	runs := diffRuns(e.before, e.after)
	if e.rec.Dirty {
		// The replayed hive goes back whole pages at a time, as Windows
		// writes it: fewer, larger patches than the changed bytes alone.
		runs = pageRuns(runs, int64(len(e.after)))
		replay := hiveStep{runs: diffRuns(e.before, e.rec.File), why: replayWhy("SYSTEM", e.rec, pagesTouched(runs))}
		e.steps = append([]hiveStep{replay}, e.steps...)
	}
	for _, run := range runs {
		var whys []string
		for _, st := range e.steps {
			for _, r := range st.runs {
				if r.off < run.off+run.n && run.off < r.off+r.n && !slices.Contains(whys, st.why) {
					whys = append(whys, st.why)
				}
			}
		}
		ps, err := f.PatchAt(run.off, e.after[run.off:run.off+run.n])
		if err != nil {
			return fmt.Errorf("placing a SYSTEM hive patch: %w", err)
		}
		for _, p := range ps {
			plan.Patches = append(plan.Patches, Patch{Disk: d, Offset: part.Start + p.Offset, Data: p.Data, Why: strings.Join(whys, "; ")})
		}
	}
	return nil
}

// chooseController picks the VM controller whose driver the guest has.
func (in Inspector) chooseController(hive *regf.Hive, set string) (Controller, string) {
	for _, sd := range storageDrivers {
		if in.Controller != "" && sd.controller != in.Controller {
			continue
		}
		if str(hive, set+`\Services\`+sd.service, "ImagePath") != "" {
			return sd.controller, sd.service
		}
	}
	return in.Controller, ""
}

type byteRun struct{ off, n int64 }

// diffRuns lists the runs where two equal-length byte slices differ,
// joining runs closer than 16 bytes.
func diffRuns(a, b []byte) []byteRun {
	var out []byteRun
	for i := 0; i < len(a); {
		if a[i] == b[i] {
			i++
			continue
		}
		j := i + 1
		for gap := 0; j < len(a) && gap < 16; j++ {
			if a[j] != b[j] {
				gap = 0
			} else {
				gap++
			}
		}
		end := j
		for end > i && a[end-1] == b[end-1] {
			end--
		}
		out = append(out, byteRun{int64(i), int64(end - i)})
		i = j
	}
	return out
}

// readHive reads a hive to look at only: a dirty one has its logs
// replayed in memory.
func readHive(vol *ntfs.Volume, path string) (*regf.Hive, error) {
	f, err := vol.Lookup(path)
	if err != nil {
		return nil, err
	}
	b, err := f.ReadAll()
	if err != nil {
		return nil, err
	}
	rec, err := recoverHive(vol, path, b)
	if err != nil {
		return nil, err
	}
	return regf.Open(rec.File)
}

func dword(h *regf.Hive, key, value string) (uint32, error) {
	k, err := h.Key(key)
	if err != nil {
		return 0, err
	}
	v, err := k.Value(value)
	if err != nil {
		return 0, err
	}
	return v.DWORD()
}

func str(h *regf.Hive, key, value string) string {
	k, err := h.Key(key)
	if err != nil {
		return ""
	}
	v, err := k.Value(value)
	if err != nil {
		return ""
	}
	s, _ := v.String()
	return s
}

func (w *WindowsInfo) readVersion(soft *regf.Hive) {
	const cv = `Microsoft\Windows NT\CurrentVersion`
	w.ProductName = str(soft, cv, "ProductName")
	w.Edition = str(soft, cv, "EditionID")
	w.InstallationType = str(soft, cv, "InstallationType")
	build := str(soft, cv, "CurrentBuildNumber")
	if build == "" {
		build = str(soft, cv, "CurrentBuild")
	}
	w.Build, _ = strconv.Atoi(build)
	// Windows 11 still says "Windows 10" in ProductName; the build tells.
	if w.Build >= 22000 && !w.Server() {
		w.ProductName = strings.Replace(w.ProductName, "Windows 10", "Windows 11", 1)
	}
}

func arch(h *regf.Hive) string {
	set, err := h.CurrentControlSet()
	if err != nil {
		return ""
	}
	return str(h, set+`\Control\Session Manager\Environment`, "PROCESSOR_ARCHITECTURE")
}

// guestID maps a Windows version to ESXi's guest identifier.
func (w WindowsInfo) guestID() string {
	x64 := !strings.EqualFold(w.Arch, "x86")
	pick := func(id64, id32 string) string {
		if x64 || id32 == "" {
			return id64
		}
		return id32
	}
	b := w.Build
	if w.Server() {
		switch {
		case b >= 26100:
			return "windows2022srvNext_64Guest" // Server 2025
		case b >= 20348:
			return "windows2019srvNext_64Guest" // Server 2022
		case b >= 17763:
			return "windows2019srv_64Guest"
		case b >= 14393:
			return "windows9Server64Guest" // Server 2016
		case b >= 9200:
			return "windows8Server64Guest" // Server 2012 and 2012 R2
		case b >= 7600:
			return "windows7Server64Guest" // Server 2008 R2
		case b >= 6001:
			return pick("winLonghorn64Guest", "winLonghornGuest")
		}
		return "windows9Server64Guest"
	}
	switch {
	case b >= 22000:
		return "windows11_64Guest"
	case b >= 10240:
		return pick("windows9_64Guest", "windows9Guest") // Windows 10
	case b >= 9200:
		return pick("windows8_64Guest", "windows8Guest")
	case b >= 7600:
		return pick("windows7_64Guest", "windows7Guest")
	case b >= 6000:
		return pick("winVista64Guest", "winVistaGuest")
	}
	return pick("windows9_64Guest", "windows9Guest")
}

// storageClasses are the device classes whose filter drivers sit in the
// boot path: disk drives, SCSI and RAID adapters, IDE/ATA controllers,
// volumes.
var storageClasses = map[string]string{
	"{4d36e967-e325-11ce-bfc1-08002be10318}": "DiskDrive",
	"{4d36e97b-e325-11ce-bfc1-08002be10318}": "SCSIAdapter",
	"{4d36e96a-e325-11ce-bfc1-08002be10318}": "hdc",
	"{71a27cdd-812a-11d0-bec7-08002be2092f}": "Volume",
}

// removeMissingFilters removes from the upper and lower filter lists of
// the storage classes the drivers that have no service: Windows stops at
// boot with INACCESSIBLE_BOOT_DEVICE when a boot-path filter cannot load
// (a backup or encryption agent uninstalled badly, say). When the list
// cannot be edited in place the plan warns instead.
func removeMissingFilters(plan *Plan, hive *regf.Hive, info WindowsInfo, edits *hiveEdits) {
	for _, set := range info.ControlSets {
		for _, guid := range slices.Sorted(maps.Keys(storageClasses)) {
			class := storageClasses[guid]
			key := set + `\Control\Class\` + guid
			k, err := hive.Key(key)
			if err != nil {
				continue
			}
			for _, list := range []string{"UpperFilters", "LowerFilters"} {
				v, err := k.Value(list)
				if err != nil {
					continue
				}
				names, err := v.MultiString()
				if err != nil {
					continue
				}
				var kept, missing []string
				for _, name := range names {
					if _, err := hive.Key(set + `\Services\` + name); name != "" && err != nil {
						missing = append(missing, name)
					} else if name != "" {
						kept = append(kept, name)
					}
				}
				if len(missing) == 0 {
					continue
				}
				why := fmt.Sprintf("%s: %s\\%s of the %s class names %s, which has no driver service: Windows would stop at boot (INACCESSIBLE_BOOT_DEVICE); removed from the list",
					info.name(), key, list, class, strings.Join(missing, ", "))
				ps, err := hive.SetMultiString(key, list, kept)
				if err != nil {
					plan.warnf("%s; but it cannot be removed offline (%v): remove it before failover", why, err)
					continue
				}
				edits.apply(ps, why)
			}
		}
	}
}

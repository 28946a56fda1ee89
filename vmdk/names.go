package vmdk

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// DiskName returns the descriptor name ESXi gives disk d of a VM: vm.vmdk,
// vm_1.vmdk, vm_2.vmdk…
func DiskName(vm string, d int) string {
	if d == 0 {
		return vm + ".vmdk"
	}
	return fmt.Sprintf("%s_%d.vmdk", vm, d)
}

// FlatName returns the extent name of a vmfs base disk: vm.vmdk →
// vm-flat.vmdk.
func FlatName(descriptor string) string {
	return strings.TrimSuffix(descriptor, ".vmdk") + "-flat.vmdk"
}

// NextDeltaName returns the names of the delta that follows parent, the way
// ESXi numbers snapshot links: vm.vmdk → vm-000001.vmdk and
// vm-000001-delta.vmdk; vm-000001.vmdk → vm-000002.vmdk. A directory in
// parent is kept.
func NextDeltaName(parent string) (descriptor, extent string) {
	dir, file := path.Split(parent)
	stem := strings.TrimSuffix(file, ".vmdk")
	n := 1
	if i := strings.LastIndexByte(stem, '-'); i >= 0 && len(stem)-i-1 == 6 {
		if v, err := strconv.Atoi(stem[i+1:]); err == nil && v >= 0 {
			stem, n = stem[:i], v+1
		}
	}
	base := fmt.Sprintf("%s%s-%06d", dir, stem, n)
	return base + ".vmdk", base + "-delta.vmdk"
}

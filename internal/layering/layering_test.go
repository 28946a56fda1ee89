package layering

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/standbykit/standbykit"

// deps lists the packages pkg depends on, itself excluded, with go list.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on the PATH: cannot list dependencies")
	}
	out, err := exec.Command(goTool, "list", "-deps", module+"/"+pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	var list []string
	for _, p := range strings.Fields(string(out)) {
		if p != module+"/"+pkg {
			list = append(list, p)
		}
	}
	return list
}

func TestLayers(t *testing.T) {
	for _, tc := range []struct {
		pkg       string
		forbidden []string // import path prefixes
	}{
		{"bootpoint", []string{module + "/vmdk", module + "/esx", "github.com/vmware/govmomi"}},
		{"bootpoint/hypervisortest", []string{module + "/vmdk", module + "/esx", "github.com/vmware/govmomi"}},
		{"aipimage", []string{module + "/vmdk", module + "/bootpoint", module + "/esx", "github.com/vmware/govmomi"}},
		{"vmdk", []string{module + "/aipimage", module + "/bootpoint", module + "/esx", "github.com/vmware/govmomi"}},
		{"p2v", []string{module + "/vmdk", module + "/bootpoint", module + "/esx", "github.com/vmware/govmomi"}},
		{"esx", []string{"github.com/vmware/govmomi/simulator", module + "/esx/esxsim"}},
		// The appliance's data path, its /init program and its image
		// builder run inside the appliance or on the build machine: no
		// vSphere there.
		{"esx/appliance", []string{"github.com/vmware/govmomi", module + "/vmdk", module + "/bootpoint"}},
		{"esx/appliance/image", []string{"github.com/vmware/govmomi", module + "/vmdk", module + "/bootpoint"}},
		{"esx/appliance/cmd/standbykit-writer", []string{"github.com/vmware/govmomi", module + "/vmdk", module + "/bootpoint"}},
	} {
		for _, d := range deps(t, tc.pkg) {
			for _, f := range tc.forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s depends on %s", tc.pkg, d)
				}
			}
		}
	}
}

package regf_test

import (
	"fmt"
	"os"

	"github.com/standbykit/standbykit/p2v/regf"
)

func Example() {
	b, err := os.ReadFile("testdata/small.hiv") // a SYSTEM-like hive
	if err != nil {
		panic(err)
	}
	h, err := regf.Open(b)
	if err != nil {
		panic(err)
	}
	cs, err := h.CurrentControlSet()
	if err != nil {
		panic(err)
	}
	svc := cs + `\Services\pvscsi`

	// Make the pvscsi driver a boot-start driver: Start = 0.
	ps, err := h.SetDWORD(svc, "Start", 0)
	if err != nil {
		panic(err)
	}
	// Add a value that does not exist yet, in the hive's free cells.
	more, err := h.SetDWORD(svc, "ErrorControl", 1)
	if err != nil {
		panic(err)
	}
	ps = append(ps, more...)

	// The caller maps the patches to disk offsets; here, apply them.
	out := regf.Apply(b, ps)
	h2, err := regf.Open(out)
	if err != nil {
		panic(err)
	}
	k, err := h2.Key(svc)
	if err != nil {
		panic(err)
	}
	vals, err := k.Values()
	if err != nil {
		panic(err)
	}
	for _, v := range vals {
		switch v.Type() {
		case regf.RegDWORD:
			d, _ := v.DWORD()
			fmt.Printf("%s = %d\n", v.Name(), d)
		case regf.RegSZ, regf.RegExpandSZ:
			s, _ := v.String()
			fmt.Printf("%s = %q\n", v.Name(), s)
		default:
			data, _ := v.Bytes()
			fmt.Printf("%s: %s, %d bytes\n", v.Name(), regf.TypeName(v.Type()), len(data))
		}
	}
	fmt.Println(len(out) == len(b))
	// Output:
	// Start = 0
	// ImagePath = "System32\\drivers\\pvscsi.sys"
	// Group = "SCSI miniport"
	// Blob: REG_BINARY, 40 bytes
	// ErrorControl = 1
	// true
}

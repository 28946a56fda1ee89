package regf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The SYSTEM-like test hive: built with hivexsh from minimalHive, then
// post-processed in Go for the structures hivex never writes (db big
// data, ri/li/lf subkey lists, a REG_DWORD in a data cell).
const (
	manyKey    = `ControlSet001\Enum\Many`
	manyCount  = 600
	bigKey     = `ControlSet001\Control\Big`
	bigValue   = "Blob"
	bigSize    = 20000
	cellDWORD  = `ControlSet001\Services\storahci` // its Start lives in a data cell
	unicodeKey = `ControlSet001\Services\weird™`
)

func bigData() []byte {
	b := make([]byte, bigSize)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// systemScript is the hivexsh script that builds the hive.
func systemScript() string {
	var s strings.Builder
	w := func(lines ...string) {
		for _, l := range lines {
			s.WriteString(l)
			s.WriteByte('\n')
		}
	}
	multi := func(ss ...string) string {
		var b []byte
		for _, x := range append(ss, "") {
			for _, r := range x + "\x00" {
				b = binary.LittleEndian.AppendUint16(b, uint16(r))
			}
		}
		return "hex:7:" + hexBytes(b[:len(b)-2])
	}
	w("add Select", "cd Select", "setval 4",
		"Current", "dword:1", "Default", "dword:1", "LastKnownGood", "dword:2", "Failed", "dword:0")
	w(`cd \`, "add ControlSet001", "add ControlSet002", "add Temp1", "add Temp2")
	// Garbage that is deleted again, leaving free cells in the middle.
	w(`cd \Temp1`, "setval 3", "A", "string:some long string value to free later", "B", "dword:7", "C", "hex:3:"+hexBytes(bytes.Repeat([]byte{0xaa}, 300)))
	w(`cd \ControlSet001`, "add Services", "add Control", "add Enum", `cd Services`,
		"add pvscsi", "add LSI_SAS", "add storahci", "add iaStorV", "add NoValues", "add weird™")
	w(`cd \ControlSet001\Services\pvscsi`, "setval 6",
		"Start", "dword:3", "Type", "dword:1", "ErrorControl", "dword:1",
		"ImagePath", `expandstring:System32\drivers\pvscsi.sys`,
		"Group", "string:SCSI miniport", "@", "string:VMware PVSCSI")
	w(`cd \ControlSet001\Services\LSI_SAS`, "setval 2", "Start", "dword:3", "ImagePath", `expandstring:System32\drivers\lsi_sas.sys`)
	w(`cd \ControlSet001\Services\storahci`, "setval 5",
		"Start", "dword:0", "ImagePath", `expandstring:System32\drivers\storahci.sys`,
		"Owners", multi("mshdc.inf", "storahci.inf"),
		"Timestamp", "qword:0x0123456789abcdef", "Empty", "none")
	w(`cd \ControlSet001\Services\iaStorV`, "setval 1", "Start", "dword:4")
	w(`cd \ControlSet001\Services\weird™`, "setval 2", "naïve", "dword:5", "symbols €", "dword:6")
	w(`cd \ControlSet001\Control`, "add Big", "cd Big", "setval 2", bigValue, "hex:3:0102030405060708", "After", "dword:9")
	w(`cd \ControlSet002`, "add Services", "cd Services", "add pvscsi", "cd pvscsi", "setval 1", "Start", "dword:4")
	w(`cd \Temp1`, "setval 1", "A", "dword:1") // frees the three values
	w(`cd \Temp2`, "add X", "add Y", "cd X", "setval 1", "V", "string:0123456789012345678901234567890123456789")
	w(`cd \Temp2`, "del") // frees the key, its subkeys and values
	w(`cd \ControlSet001\Enum`, "add Many", "cd Many")
	for i := manyCount - 1; i >= 0; i-- {
		w(fmt.Sprintf("add k%03d", i))
	}
	w("commit")
	return s.String()
}

var (
	systemOnce sync.Once
	systemHive []byte
	systemErr  error
)

// buildSystem returns (a copy of) the SYSTEM-like hive, built once.
func buildSystem(t testing.TB) []byte {
	t.Helper()
	systemOnce.Do(func() {
		p := writeHive(t, minimalHive())
		hivexsh(t, p, systemScript())
		b := readFile(t, p)
		b, systemErr = postProcess(b)
		systemHive = b
	})
	if systemErr != nil {
		t.Fatal(systemErr)
	}
	if systemHive == nil {
		t.Fatal("system hive not built")
	}
	return append([]byte(nil), systemHive...)
}

// writeSystem writes the SYSTEM-like hive to a file and returns its path
// and bytes.
func writeSystem(t testing.TB) (string, []byte) {
	b := buildSystem(t)
	return writeHive(t, b), b
}

// addCells allocates zeroed cells with room for the given data sizes,
// either in a new hive bin appended to the hive (updating the base
// block) or, when inPlace, in the hive's free cells. It returns the new
// bytes and the bins offsets of the cells; the caller fills them in at
// fileOffset(off)+4.
func addCells(b []byte, sizes []int, inPlace bool) ([]byte, []uint32, error) {
	le := binary.LittleEndian
	offs := make([]uint32, len(sizes))
	if inPlace {
		h, err := Open(b)
		if err != nil {
			return nil, nil, err
		}
		e := h.newEdit()
		for i, n := range sizes {
			if offs[i], err = e.alloc(align8(4+n), "test cell"); err != nil {
				return nil, nil, err
			}
		}
		return Apply(b, mergePatches(b, e.writes)), offs, nil
	}
	binsSize := le.Uint32(b[40:])
	b = b[:baseBlockSize+int(binsSize)]
	used := uint32(hbinHeaderLen)
	for _, n := range sizes {
		used += align8(4 + n)
	}
	binSize := (used + 8 + 4095) &^ 4095
	bin := make([]byte, binSize)
	copy(bin, "hbin")
	le.PutUint32(bin[4:], binsSize)
	le.PutUint32(bin[8:], binSize)
	off := uint32(hbinHeaderLen)
	for i, n := range sizes {
		sz := align8(4 + n)
		le.PutUint32(bin[off:], uint32(-int32(sz)))
		offs[i] = binsSize + off
		off += sz
	}
	le.PutUint32(bin[off:], binSize-off) // free remainder
	b = append(b, bin...)
	le.PutUint32(b[40:], binsSize+binSize)
	le.PutUint32(b[checksumOff:], Checksum(b))
	return b, offs, nil
}

// fillCell writes data into the cell at bins offset off.
func fillCell(b []byte, off uint32, data []byte) { copy(b[fileOffset(off)+4:], data) }

func freeCellAt(b []byte, off uint32) {
	p := b[fileOffset(off):]
	raw := int32(binary.LittleEndian.Uint32(p))
	if raw < 0 {
		binary.LittleEndian.PutUint32(p, uint32(-raw))
	}
}

func postProcess(b []byte) ([]byte, error) {
	var err error
	if b, err = makeBigData(b, bigKey, bigValue, bigData(), bigDataSegment, false); err != nil {
		return nil, fmt.Errorf("big data: %w", err)
	}
	if b, err = makeRI(b, manyKey, manyCount, false); err != nil {
		return nil, fmt.Errorf("ri: %w", err)
	}
	if b, err = makeCellDWORD(b); err != nil {
		return nil, fmt.Errorf("data cell DWORD: %w", err)
	}
	return b, nil
}

// makeBigData turns the value into data stored as db big data, in
// segments of segSize bytes (16344 in real hives).
func makeBigData(b []byte, key, value string, data []byte, segSize int, inPlace bool) ([]byte, error) {
	h, err := Open(b)
	if err != nil {
		return nil, err
	}
	k, err := h.Key(key)
	if err != nil {
		return nil, err
	}
	v, err := k.Value(value)
	if err != nil {
		return nil, err
	}
	var segs [][]byte
	for rest := data; len(rest) > 0; {
		n := min(len(rest), segSize)
		seg := make([]byte, n+4) // 4 spare bytes, as Windows leaves
		copy(seg, rest[:n])
		segs = append(segs, seg)
		rest = rest[n:]
	}
	sizes := []int{8, 4 * len(segs)} // db, segment list
	for _, s := range segs {
		sizes = append(sizes, len(s))
	}
	b, offs, err := addCells(b, sizes, inPlace)
	if err != nil {
		return nil, err
	}
	db := []byte("db")
	db = binary.LittleEndian.AppendUint16(db, uint16(len(segs)))
	db = binary.LittleEndian.AppendUint32(db, offs[1])
	var list []byte
	for i := range segs {
		list = binary.LittleEndian.AppendUint32(list, offs[2+i])
	}
	oldData := binary.LittleEndian.Uint32(v.vk[vkDataOff:])
	for i, c := range append([][]byte{db, list}, segs...) {
		fillCell(b, offs[i], c)
	}
	vk := b[v.Offset()+4:]
	binary.LittleEndian.PutUint32(vk[vkDataSize:], uint32(len(data)))
	binary.LittleEndian.PutUint32(vk[vkDataOff:], offs[0])
	freeCellAt(b, oldData)
	nk := b[k.Offset()+4:]
	binary.LittleEndian.PutUint32(nk[nkMaxValData:], uint32(len(data)))
	return b, nil
}

// makeRI splits the key's single lh list (of count entries) into lh + li
// + lf lists under an ri.
func makeRI(b []byte, key string, count int, inPlace bool) ([]byte, error) {
	h, err := Open(b)
	if err != nil {
		return nil, err
	}
	k, err := h.Key(key)
	if err != nil {
		return nil, err
	}
	oldList := le32(k.nk, nkSubkeyList)
	lh, err := h.cellSig(oldList, "lh")
	if err != nil {
		return nil, err
	}
	n := int(le16(lh, 2))
	if n != count {
		return nil, fmt.Errorf("lh has %d entries", n)
	}
	third := n / 3
	parts := [][2]int{{0, third}, {third, 2 * third}, {2 * third, n}}
	var cells [][]byte
	for i, p := range parts {
		sig := []string{"lh", "li", "lf"}[i]
		c := []byte(sig)
		c = binary.LittleEndian.AppendUint16(c, uint16(p[1]-p[0]))
		for j := p[0]; j < p[1]; j++ {
			e := lh[4+8*j:]
			c = append(c, e[:4]...)
			switch sig {
			case "lh":
				c = append(c, e[4:8]...)
			case "lf":
				sub, err := h.cellSig(le32(e, 0), "nk")
				if err != nil {
					return nil, err
				}
				hint := make([]byte, 4)
				copy(hint, sub[nkName:nkName+min(4, int(le16(sub, nkNameLen)))])
				c = append(c, hint...)
			}
		}
		cells = append(cells, c)
	}
	sizes := []int{4 + 4*len(parts)}
	for _, c := range cells {
		sizes = append(sizes, len(c))
	}
	b, offs, err := addCells(b, sizes, inPlace)
	if err != nil {
		return nil, err
	}
	ri := []byte("ri")
	ri = binary.LittleEndian.AppendUint16(ri, uint16(len(parts)))
	for i := range parts {
		ri = binary.LittleEndian.AppendUint32(ri, offs[1+i])
	}
	for i, c := range append([][]byte{ri}, cells...) {
		fillCell(b, offs[i], c)
	}
	binary.LittleEndian.PutUint32(b[k.Offset()+4+nkSubkeyList:], offs[0])
	freeCellAt(b, oldList)
	return b, nil
}

// makeCellDWORD moves storahci's Start (0) out of the vk into a data cell.
func makeCellDWORD(b []byte) ([]byte, error) {
	h, err := Open(b)
	if err != nil {
		return nil, err
	}
	k, err := h.Key(cellDWORD)
	if err != nil {
		return nil, err
	}
	v, err := k.Value("Start")
	if err != nil {
		return nil, err
	}
	b, offs, err := addCells(b, []int{4}, false)
	if err != nil {
		return nil, err
	}
	fillCell(b, offs[0], v.vk[vkDataOff:vkDataOff+4])
	vk := b[v.Offset()+4:]
	binary.LittleEndian.PutUint32(vk[vkDataSize:], 4)
	binary.LittleEndian.PutUint32(vk[vkDataOff:], offs[0])
	return b, nil
}

// smallScript builds the small hive of the example and the fuzz seeds.
const smallScript = `add Select
cd Select
setval 2
Current
dword:1
LastKnownGood
dword:1
cd \
add ControlSet001
cd ControlSet001
add Services
cd Services
add pvscsi
add Many
cd pvscsi
setval 4
Start
dword:3
ImagePath
expandstring:System32\drivers\pvscsi.sys
Group
string:SCSI miniport
Blob
hex:3:00
cd ..\Many
add a
add b
add c
add d
add e
add f
commit
`

// buildSmall returns a small hive (under 16 KiB) with a db value and an
// ri list, for the example and the fuzz seeds.
func buildSmall(t testing.TB) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "small")
	writeFileT(t, p, minimalHive())
	hivexsh(t, p, smallScript)
	b := readFile(t, p)
	blob := []byte("0123456789abcdefghijklmnopqrstuvwxyzABCD")
	b, err := makeBigData(b, `ControlSet001\Services\pvscsi`, "Blob", blob, bigDataSegment, true)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = makeRI(b, `ControlSet001\Services\Many`, 6, true); err != nil {
		t.Fatal(err)
	}
	return b
}

package ntfs_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"

	"github.com/standbykit/standbykit/p2v/ntfs"
)

func Example() {
	// A small Windows-like volume; on a real disk, r is the partition
	// (e.g. an io.SectionReader over the disk).
	zf, err := os.Open("testdata/windows.img.gz")
	if err != nil {
		panic(err)
	}
	defer zf.Close()
	zr, err := gzip.NewReader(zf)
	if err != nil {
		panic(err)
	}
	img, err := io.ReadAll(zr)
	if err != nil {
		panic(err)
	}

	v, err := ntfs.Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		panic(err)
	}
	f, err := v.Lookup(`\Windows\System32\config\SYSTEM`) // case-insensitive
	if err != nil {
		panic(err)
	}
	ranges, err := f.Ranges()
	if err != nil {
		panic(err)
	}
	fmt.Println("size:", f.Size())
	for _, r := range ranges {
		fmt.Printf("%d bytes at volume offset %d\n", r.Length, r.Offset)
	}
	// A same-size patch of the file's bytes 0-3, as volume edits.
	patches, err := f.PatchAt(0, []byte("regf"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("patch %q at %d\n", patches[0].Data, patches[0].Offset)
	names, _ := v.ReadDir("/Windows/System32/config")
	fmt.Println(names)
	// Output:
	// size: 100000
	// 100000 bytes at volume offset 1478656
	// patch "regf" at 1478656
	// [SOFTWARE SYSTEM SYSTEM.hardlink]
}

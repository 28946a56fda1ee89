package bootcheck_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"log"
	"os"
	"time"

	"github.com/standbykit/standbykit/bootcheck"
)

func ExampleJudge() {
	// A 720 × 400 console, black but for two lines of white text: what
	// a boot loader leaves when it stops with an error.
	img := image.NewRGBA(image.Rect(0, 0, 720, 400))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.Black), image.Point{}, draw.Src)
	for _, line := range []image.Rectangle{image.Rect(0, 2, 300, 13), image.Rect(0, 18, 200, 29)} {
		draw.Draw(img, line, image.NewUniform(color.White), image.Point{}, draw.Src)
	}
	v := bootcheck.Judge(img, bootcheck.Rules{})
	fmt.Println(v.Outcome, v.Rule, v.Measures.TextLines)
	// Output: failed boot-loader-text 2
}

func ExampleLocal() {
	// A boot point's disk exported from ESXi: the base VMDK and the
	// delta VMDKs above it, in one folder; the top one names its parent.
	v, screenshot, err := bootcheck.Local(context.Background(), bootcheck.LocalOptions{
		Disks:      []bootcheck.Disk{{Path: "export/web01-000003.vmdk"}},
		Controller: "pvscsi", // the boot point's plan: p2v.Plan.Controller
		Firmware:   bootcheck.BIOS,
		Timeout:    20 * time.Minute, // no KVM: emulation is slow
		Dir:        "evidence",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v, screenshot)
	if !v.Passed() {
		os.Exit(1)
	}
}

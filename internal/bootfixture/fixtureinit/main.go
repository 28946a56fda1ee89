// Command fixtureinit is the /init of the boot check's test system
// (package bootfixture): it fills the VGA console with lines of bright
// green text, which neither firmware nor the kernel print, so that a
// screenshot shows it ran, and then idles — as init it must never exit.
package main

import (
	"fmt"
	"os"
	"time"
)

// Lines is how many lines it prints: more than a text screen holds.
const Lines = 40

func main() {
	// ANSI: bright green on the default background, then back to normal.
	for i := 1; i <= Lines; i++ {
		fmt.Fprintf(os.Stdout, "\x1b[1;32mstandbykit boot check fixture: /init is running, line %02d of %d\x1b[0m\n", i, Lines)
	}
	for {
		time.Sleep(time.Hour)
	}
}

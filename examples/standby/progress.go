package main

import (
	"fmt"
	"io"
	"time"

	"github.com/standbykit/standbykit/bootpoint"
)

// progressPrinter prints one line per boot point made.
func progressPrinter(out io.Writer) func(bootpoint.Event) {
	var started time.Time
	return func(e bootpoint.Event) {
		switch e.Step {
		case "inspect":
			started = time.Now()
		case "done":
			fmt.Fprintf(out, "     point %d → boot point %d: %s written in %s\n", e.Sequence, e.Sequence, mib(e.Bytes), time.Since(started).Round(time.Millisecond))
		}
	}
}

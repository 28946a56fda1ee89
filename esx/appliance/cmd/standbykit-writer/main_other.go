//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "standbykit-writer is the writer appliance's /init: it runs on Linux only")
	os.Exit(2)
}

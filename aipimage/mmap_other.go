//go:build !unix

package aipimage

import "os"

func mapFile(*os.File, int64) *mappedFile { return nil }

//go:build !linux

package main

import (
	"errors"
	"os"

	"github.com/standbykit/standbykit/internal/extent"
)

// dataRanges is not implemented here: verify compares the whole images.
func dataRanges(*os.File, int64) ([]extent.Extent, error) {
	return nil, errors.ErrUnsupported
}

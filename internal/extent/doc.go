// Package extent implements sets of byte ranges over int64 offsets.
//
// A Set is kept sorted, non-overlapping and coalesced (adjacent ranges are
// merged), so two sets covering the same bytes are identical slice for slice.
// StandbyKit uses it for the blocks an image point changed, the bytes a P2V
// plan patches and the grains a delta disk must hold: Union, Intersect and
// Subtract combine them, AlignOut widens them to a grain, and All iterates
// them in ascending order for single-pass writers.
//
// The package has no I/O and no public promise outside the module.
package extent

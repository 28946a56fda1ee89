// Package bootpoint turns the points of an image set into boot points of a
// standby VM.
//
// A boot point k is a VM snapshot whose disks hold exactly point k's data
// with the P2V patches of point k applied. Each boot point after the first
// is written as a delta on top of the previous one; PlanDelta computes
// which bytes that delta must hold (the blocks the backup changed, plus the
// bytes the previous and the current P2V plans patch) and where to read
// them. The invariant every layer is tested against:
//
//	content(VM disk chain at boot point k) == content(point k) ⊕ patches(k)
package bootpoint

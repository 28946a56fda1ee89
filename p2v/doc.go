// Package p2v inspects a physical machine's disk offline and plans what the
// machine needs to boot as a VM: firmware, guest OS identifier, the disk
// controller whose driver the guest already has, and the byte patches that
// enable it.
//
// A Plan never writes anything: its patches are same-size, in-place edits
// (a registry value, a text file rewritten inside its own blocks, a
// checksum) that travel in the same delta disk as the backup's changed
// blocks. Overlay presents a disk with a plan's patches applied, as an
// io.ReaderAt.
//
// This file holds the Plan model that the rest of StandbyKit consumes;
// inspection of Windows and Linux guests builds on it.
package p2v

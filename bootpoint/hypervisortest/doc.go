// Package hypervisortest provides an in-memory bootpoint.Hypervisor and
// the conformance suite every Hypervisor implementation must pass, as
// net/http/httptest sits beside net/http.
//
// Memory is the reference model of the contract. Each VM has the current
// content of each of its disks as a byte slice, and each snapshot records
// a full copy of every disk: AddBootPoint writes the changes into the
// current content and then records a snapshot, Revert copies a snapshot
// back, RemoveSnapshot forgets one (its children and the current state keep
// their content) and OpenDisk reads one. It is deliberately plain, so that
// it is obviously right; it models ESXi where the contract leaves room
// (snapshots form a tree, the current snapshot's parent becomes current
// when it is removed, reverting powers the VM off, disks of a powered-on VM
// cannot be written). Its exported fields are test hooks whose zero values
// do nothing: Fail injects a failure at a named step, Slow and MaxInFlight
// measure concurrency, Drop simulates a hypervisor that silently loses
// data. Spec, PoweredOn and VMs show what a test cannot see through the
// interface.
//
// Run is the conformance suite. A Harness says how to make a fresh, empty
// hypervisor and, optionally, how to make its next AddBootPoint fail half
// way. The suite builds its own disk contents in memory (pseudo-random but
// deterministic: sector-aligned changes, small ones, ones across 64 KiB
// and 2 MiB boundaries, ones at the very end of a disk, disks or boot
// points without change) and checks, after every step, that every snapshot
// lists as expected and reads back byte for byte as the content it must
// hold: through a chain of boot points, consolidation of the oldest and of
// a middle one, a revert and a new branch, a failed AddBootPoint, bad
// input, power and deletion.
//
// Memory passes Run (see memory_test.go), and this package's tests show
// that Run fails hypervisors that break the contract. Every other
// implementation (package esx, on govmomi's simulator) should run the same
// suite: then the tests of package bootpoint, which use Memory, say
// something about it too.
package hypervisortest

// Package esxsim runs govmomi's in-process vSphere simulator (vcsim) as an
// ESXi host whose disks behave like ESXi's, for tests and demos of
// package esx. It sits apart from esx the way net/http/httptest sits
// apart from net/http: a product that imports esx does not link vcsim.
//
// # Model
//
// Start runs vcsim's ESX model with one datastore, Datastore, kept in a
// local folder, so that tests can read every disk file with independent
// tools (qemu-img), and reported as NFS (its deltas are vmfsSparse
// files). Only User and Password log in.
//
// vcsim itself keeps no disk content and its snapshots touch no disk
// file. esxsim adds what ESXi does, on VMFS5 and NFS datastores:
//
//   - An NFC import (ImportVApp) stores each uploaded streamOptimized
//     disk as a thin vmfs disk: a descriptor (vm.vmdk) and its extent
//     (vm-flat.vmdk), sparse on the local file system.
//   - CreateSnapshot freezes every disk as it is (the snapshot's
//     configuration records the current leaves) and moves the VM onto a
//     new empty child of each (vm-000001.vmdk with vm-000001-delta.vmdk,
//     numbered after the base disk as ESXi does): vmfsSparse under 2 TiB;
//     from 2 TiB on, where ESXi uses SEsparse (not public), a hosted
//     sparse extent (vmdk.SparseFile), so that a delta of another format
//     than vmfsSparse exists here too.
//   - RemoveSnapshot consolidates: the delta that the snapshot's disk has
//     as its only child is merged into that disk, which takes the child's
//     content ID; the configurations and descriptors that named the child
//     name the merged disk, and the child's files are deleted. Every
//     other snapshot and the current state read exactly as before. A disk
//     with several children (a snapshot tree after a revert) is kept.
//   - RevertToSnapshot discards the VM's current leaves (unless a
//     snapshot still needs them) and puts the VM on a new empty child of
//     the snapshot's disks.
//   - The current leaf is writable: WriteDisk writes into it as a guest
//     would (the COWD extent grows grain by grain, and the disk gets a new
//     content ID, as ESXi gives one on the first write).
//
// A VM whose notes mark it as StandbyKit's writer appliance
// (appliance.IsApplianceAnnotation) runs the appliance's program in
// process when powered on: appliance.Apply against the disks attached to
// it (the payload found by appliance.PayloadID; the others, with their
// unit numbers, the leaves it may write, which get new content IDs when
// written), its report into the file its serial port is backed by, then
// it powers itself off. SetApplianceFault makes its next
// run hang, damage the data it writes, or cut its report.
//
// Clients may call the simulator concurrently. vcsim alone has data races
// then (its tasks write objects that other calls read without their
// locks), so esxsim lets one call at a time change the model: a call
// holds the simulator until every task it started has ended. Long polls
// for property updates wait outside, and the datastore's files are served
// over /folder by esxsim itself, from the folder, without touching
// vcsim's model.
//
// The snapshot methods esxsim does not model (CreateSnapshotEx,
// RevertToCurrentSnapshot, RemoveAllSnapshots, ConsolidateVMDisks) fail
// with NotSupported instead of running without their disk semantics, and
// so does CreateTask, on which vcsim's ESX model panics.
// UnusedDiskFiles lists disk files no chain uses, for tests that a
// sequence of operations leaves nothing behind.
package esxsim

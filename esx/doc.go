// Package esx implements bootpoint.Hypervisor (and the optional
// bootpoint.NetworkConnector and bootpoint.TestBooter) on VMware ESXi
// through govmomi, and runs govmomi's in-process simulator (vcsim) for
// tests and demos.
//
// # Model
//
// A standby is an ordinary VM in the configured folder, resource pool and
// datastore (govc's GOVC_* variables, see ConfigFromEnv). CreateStandby
// creates it by an NFC import (ImportVApp) whose import spec carries the
// whole hardware, so each base disk, a streamOptimized VMDK stream, lands
// as "[ds] <vm>/<vm>.vmdk" (disk 0) and "<vm>_<d>.vmdk"; there is no
// intermediate import VM to clean up. Disks are numbered by controller and
// unit number, which is their creation order.
//
// A boot point is a set of delta disks plus a snapshot. AddBootPoint
// uploads each delta (extent first, then descriptor, through a Transport)
// into the VM's folder, reconfigures the disk onto the new descriptor with
// the previous leaf as its Parent backing, and takes a snapshot without
// memory whose description carries the boot point's metadata. The chain of
// boot point k is then the backing chain recorded in snapshot k's
// configuration, which DiskChain walks (descriptor first, then its
// extents, leaf to base). Any failure removes a snapshot the call made,
// restores the previous backings and deletes the uploaded files. Deltas
// are only added to a powered-off VM.
//
// The parent of the next delta (LeafDescriptor) is the disk's current
// backing, except when that is a child of the current snapshot's backing
// that no snapshot records: the empty redo log ESXi starts after each
// snapshot or revert. Then it is the snapshot's backing, and the redo log
// is bypassed. Revert uses the same test to tell ESXi's fresh redo log
// (kept) from vcsim's stale leaf (the disk is moved onto the snapshot's
// backing).
//
// The session is kept alive (session/keepalive) and, when the server
// reports NotAuthenticated (as a fault, or per object in a property
// collector answer), logged in again and the call repeated once.
//
// # Simulator
//
// StartSimulator runs vcsim's ESX model on a local folder. vcsim discards
// NFC upload bodies; Simulator stores them in the target file, so the
// imported base is the stream's bytes as sent (real ESXi converts it into
// a VMFS disk: descriptor plus -flat extent). Such a file starts with
// "KDMV": LeafDescriptor and DiskChain then use its embedded descriptor
// and list the file once. vcsim's snapshots copy the VM's configuration
// (with the Parent chain of each disk backing) but make no redo log;
// RevertToSnapshot does not restore the configuration, so Revert
// reconfigures the disks onto the snapshot's backings itself. vcsim parses
// a Parent descriptor when a disk is reconfigured (a delta's parent must
// be a text descriptor or a sparse file whose lines are < 64 KiB apart).
// Its datastore file server honours HTTP ranges; its PUT ignores a broken
// body (the partial file stays until deleted). By default vcsim accepts
// any credentials; Simulator accepts only SimUser and SimPassword.
// vcsim's RemoveSnapshot deletes the file a stale layout key names, which
// can be a live delta of a later snapshot; Simulator unsets that key
// before passing the call on, so removal touches no disk file (ESXi
// consolidates instead).
//
// # Open questions on real ESXi
//
//   - ImportVApp with a hand-built VirtualMachineImportSpec (no OVF):
//     does ESXi accept it, with EFI firmware and every controller kind,
//     and are the lease's disk URLs in disk order (they are matched by
//     order)?
//   - After a snapshot ESXi runs the VM on a new empty redo log.
//     LeafDescriptor and AddBootPoint name the snapshot's leaf as parent
//     in that case and reconfigure the disk onto the new delta: does ESXi
//     accept reconfiguring a disk onto our own delta while snapshots
//     exist, and what becomes of the orphaned redo log? The alternative,
//     replacing the redo log's content under its own name, fits the
//     Transport interface too.
//   - RemoveSnapshot consolidates on ESXi: the remaining snapshots' chains
//     must still read as their boot points (on vcsim no disk file changes).
//   - Test clones name their parent as "../<standby>/<leaf>.vmdk"; ESXi
//     itself writes absolute /vmfs/volumes paths in parentFileNameHint.
//   - Datastore HTTP access through vCenter needs the dcPath/dsName
//     parameters govmomi adds; through ESXi directly it is
//     ha-datacenter. Ranged GETs are used for sparse headers.
//   - Failed uploads are removed with FileManager.DeleteDatastoreFile
//     (not VirtualDiskManager, which would parse a broken descriptor and
//     delete extents): check that ESXi deletes a lone .vmdk file so.
//   - DestroyVM of a VM whose disks reach outside its folder (a test
//     clone) unregisters it and deletes only its folder, since
//     Destroy_Task would delete the parents too.
package esx

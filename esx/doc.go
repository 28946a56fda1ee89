// Package esx implements bootpoint.Hypervisor (and the optional
// bootpoint.NetworkConnector and bootpoint.TestBooter) on VMware ESXi
// through govmomi. It owns every ESXi disk-format decision: bootpoint
// hands it the bytes that change and the content they come from, and
// reads boot points back as an io.ReaderAt. All VMDK bytes it writes or
// reads go through package vmdk. Its simulator, for tests and demos,
// lives apart in esx/esxsim, so that a product importing esx does not
// link govmomi's simulator.
//
// # Model
//
// A standby is an ordinary VM in the configured folder, resource pool and
// datastore (govc's GOVC_* variables, see ConfigFromEnv). CreateStandby
// writes each disk's content as a streamOptimized VMDK and creates the VM
// by an NFC import (ImportVApp) whose import spec carries the whole
// hardware, so each disk lands as "[ds] <vm>/<vm>.vmdk" (disk 0) and
// "<vm>_<d>.vmdk", converted by the host into its own thin format; there
// is no intermediate import VM to clean up. Disks are numbered by
// controller and unit number, which is their creation order.
//
// ESXi makes every delta. A snapshot freezes the disks as they are and
// puts the VM on a new, empty child of each (the "redo log",
// <vm>-00000N.vmdk, in the format the datastore uses). A boot point is:
// the changes written into that current leaf, then a snapshot, without
// memory, whose description carries the boot point's metadata. The first
// boot point is the imported base itself. The chain of boot point k is
// the backing chain recorded in snapshot k's configuration (ChainFiles
// lists it); OpenDisk downloads it and reads it with vmdk.OpenChain.
// RemoveSnapshot and Revert are ESXi's own: it consolidates the removed
// snapshot's delta, and a revert discards the current leaf and starts a
// new empty one.
//
// How the changes reach the leaf: today by upload, where the leaf is a
// vmfsSparse delta (VMFS5 and NFS datastores, disks under 2 TiB): its
// descriptor (same parent, same names, a new CID and a marker naming that
// CID) and then its extent (a COWD file holding the changed sectors) are
// replaced through the datastore's file interface. Other leaf formats
// (VMFS6's SEsparse, vSAN objects) are refused with ErrLeafFormat; the
// writer appliance, which writes through ESXi's own disk stack, is the
// next step. Before writing, the leaf must be the empty child of the
// current snapshot: a leaf someone wrote to (a powered-on standby, a
// failover) is refused with bootpoint.ErrDiverged. A leaf that holds only
// an interrupted write of this package (its CID is still the one the
// marker names: the host gives a disk a new CID when it first writes to
// it) is discarded by a revert and written again. Any failure removes a
// snapshot the call made and reverts the VM to its current snapshot,
// which discards the half-written leaf.
//
// The session is kept alive (session/keepalive) and, when the server
// reports NotAuthenticated (as a fault, or per object in a property
// collector answer), logged in again and the call repeated once.
//
// # Open questions on real ESXi
//
//   - ImportVApp with a hand-built VirtualMachineImportSpec (no OVF):
//     does ESXi accept it, with EFI firmware and every controller kind,
//     and are the lease's disk URLs in disk order (they are matched by
//     order)?
//   - Replacing a vmfsSparse redo log's descriptor and extent through the
//     datastore file interface: does ESXi open the replaced leaf (the
//     file interface stores bytes as sent; no public report of ESXi
//     opening a COWD file another program wrote was found)? This is why
//     the writer appliance will be the default.
//   - ESXi's own redo logs name their parent with an absolute
//     /vmfs/volumes path; the simulator's name it relative.
//   - Test clones name their parent as "../<standby>/<leaf>.vmdk".
//   - Datastore HTTP access through vCenter needs the dcPath/dsName
//     parameters govmomi adds; through ESXi directly it is
//     ha-datacenter. Ranged GETs are used to read descriptors.
//   - DestroyVM of a VM whose disks reach outside its folder (a test
//     clone) unregisters it and deletes only its folder, since
//     Destroy_Task would delete the parents too.
package esx

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
// lists it); OpenDisk reads it with vmdk.OpenChain in place, with ranged
// downloads of what is read (downloading the whole chain only when the
// Transport cannot read ranges), so reading back what a boot point wrote
// costs about that much. RenameVM serves a reseed.
// RemoveSnapshot and Revert are ESXi's own: it consolidates the removed
// snapshot's delta, and a revert discards the current leaf and starts a
// new empty one.
//
// How the changes reach the leaf is the Writer's business. The default,
// WriterAppliance, writes through ESXi's own disk stack, whatever the
// delta format (VMFS6's SEsparse, vSAN objects, disks of 2 TiB and more):
// the changes and a guard (the CRC of what each disk holds at those
// ranges, from Delta.Base) travel as a payload (package esx/appliance)
// imported through NFC as the only disk of a throwaway VM that is never
// powered on; the payload disk and the standby's leaves are attached to
// the writer appliance, a small VM deployed once per host (found by its
// annotation, redeployed when appliance.Version changes); it checks the
// guard, writes, reads back, reports to its serial port (a datastore file)
// and powers itself off; the report is read, the disks detached and the
// payload VM destroyed.
//
// One run of the appliance writes the boot points of several standby VMs:
// those waiting for it when it is free, up to ApplianceOptions.Slots (at
// most four: each boot point's payload and leaves go on a pvscsi
// controller of their own, and a VM has four SCSI controllers), so that
// with a per-host limit of concurrent tasks up to four, the appliance
// boots once per batch and the host never has more than the limit's
// worth of writes in flight. The appliance is powered on per run rather
// than kept running to take disks by hot-add: a boot of its kernel costs
// seconds (11 s under qemu's TCG emulation with the boot test's disks,
// so less on a real host), spread over the run's boot points, and every
// run starts from a clean guest that sees its disks from boot, with no
// SCSI rescan, no hot-remove while the guest may still hold I/O, and no
// state carried from one run to the next.
// WriterUpload, the opt-in fast path, replaces each vmfsSparse leaf's
// extent and descriptor through the datastore file interface; it is
// refused (ErrLeafFormat) unless the datastore is NFS or VMFS 5 and the
// leaf is vmfsSparse.
//
// Before writing, each leaf must be the empty child of the current
// snapshot (where its format can be read, vmfsSparse, it is checked to
// hold no data): a leaf someone wrote to (a powered-on standby, a
// failover) is refused with bootpoint.ErrDiverged. While a boot point is
// being written, the standby's extraConfig carries a writing mark; found
// at the start of AddBootPoint, it means a run died mid-write, and the
// VM is reverted to its current snapshot, which discards the partial
// leaves (Revert clears the mark too). Any failure removes a snapshot the
// call made and reverts the VM to its current snapshot.
//
// The session is kept alive (session/keepalive) and, when the server
// reports NotAuthenticated (as a fault, or per object in a property
// collector answer), logged in again and the call repeated once.
//
// What the host answers is read as untrusted: a SOAP answer is read up to
// 256 MiB; the text of a fault, of a call or a task, is cut to 1 KiB of
// one printable line (escape sequences and other control characters
// replaced), while errors.Is and govmomi's fault.Is still see the fault;
// snapshot trees and folder listings are checked before they are walked
// or size reads.
//
// # Open questions on real ESXi
//
//   - ImportVApp with a hand-built VirtualMachineImportSpec (no OVF):
//     does ESXi accept it, with EFI firmware and every controller kind,
//     and are the lease's disk URLs in disk order (they are matched by
//     order)?
//   - Replacing a vmfsSparse redo log's descriptor and extent through the
//     datastore file interface (WriterUpload): does ESXi open the
//     replaced leaf (the file interface stores bytes as sent; no public
//     report of ESXi opening a COWD file another program wrote was
//     found)? This is why the writer appliance is the default.
//   - The appliance: attaching another VM's snapshot leaf and a disk of
//     a registered, powered-off VM (the payload's) to a running or
//     powered-off VM; the serial port file written only at power-off;
//     whether ESXi's kernel console and BIOS stay off the serial port.
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

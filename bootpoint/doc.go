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
//
// Standby keeps one VM from one image set. It talks to the
// virtualization host through the Hypervisor interface, which says what a
// disk must hold and never how: a Delta names the bytes that change and
// gives the whole content they come from, and a boot point's disk is read
// back as an io.ReaderAt. Disk formats, delta files and transports are
// the hypervisor's business (package esx implements it on VMware ESXi,
// where ESXi makes every delta; bootpoint/hypervisortest has an in-memory
// reference model and the conformance suite every Hypervisor passes).
// Add creates the VM from the first point it is given, or adds one boot
// point on top of the current one, covering every increment in between;
// a VM whose disks changed since its current boot point (ErrDiverged) is
// left alone. Verify reads a boot point's disks back from the host and
// compares them with its point. Beyond MaxBootPoints (30, ESXi's snapshot
// depth) the oldest boot points are consolidated by the host. Each
// snapshot's description holds the boot point's Metadata, so the host is
// the source of truth: a run that died anywhere is resumed from what the
// host shows. Standby.Progress hears each step, and how far the long ones
// have come (bytes done of a total, per disk): Standby reports its
// verification, and hands the Hypervisor a context through which it
// reports its own transfers (WithProgress, Progress), so that seeding a
// large disk or writing a large boot point gives signs of life.
//
// Manager runs many Tasks (an image set, a Standby and a Trigger:
// immediately, daily at a time, or every N increments), concurrently within
// a per-host and a global limit, and keeps a small state file (written
// atomically) that it reconciles with the host on every pass. It opens
// each task's set as an aipimage folder unless Manager.Open says
// otherwise: a product with its own image format plugs into the manager
// as it does into Standby, through aipimage.Set. Failover,
// TestBoot and DeleteTask are the operator's actions.
package bootpoint

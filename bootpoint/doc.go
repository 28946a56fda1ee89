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
// left alone. Every new boot point's written ranges are read back from the
// host and compared with the point (a boot point that differs is removed;
// Standby.SkipReadBack turns this off): the cost is what was written.
// Verify and VerifyBootPoint compare a boot point in full (the disk's
// size) or what it wrote. A new full image in the set (a new chain) becomes
// a boot point like any point: Add compares it with the previous point to
// find what changed, reading both where they hold data, and writes only
// that. A point whose disks differ in size or number from the VM's is
// refused with a *ResizeError: ESXi cannot grow a disk that has snapshots. Beyond MaxBootPoints (30, ESXi's snapshot
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
// atomically) that it reconciles with the host on every pass. A failed
// run is tried again at later passes, after a delay that doubles
// (Manager.RetryDelay), not at the trigger's next slot; a run stopped by
// a cancelled context undoes its step in flight and is recorded as
// interrupted (ErrInterrupted), not as a failure. It opens
// each task's set as an aipimage folder unless Manager.Open says
// otherwise: a product with its own image format plugs into the manager
// as it does into Standby, through aipimage.Set. Failover,
// TestBoot and DeleteTask are the operator's actions; so is Reseed, which
// a task whose disks were resized waits for (TaskState.NeedsDecision): it
// builds a new standby from the resized point beside the old one and
// replaces the old one once the new one has its first boot point. A task
// with FullVerifyEvery has its newest boot point compared in full once per
// period (Manager.Verify on demand).
package bootpoint

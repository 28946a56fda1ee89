// Package bootcheck decides whether a machine booted, from a screenshot
// of its console: the verdict of a boot point's boot check. It needs no
// credentials in the guest and knows nothing of ESXi: the check on the
// host takes the screenshot with CreateScreenshot_Task (a PNG file) and
// judges it here, and Local boots a boot point's disk chain, exported to
// local files, under QEMU and judges the screenshots QEMU's monitor
// takes, with the same rules.
//
// # The rules
//
// Judge applies three rules, each a setting of Rules with a default, in
// this order; the first that matches fails the screen, and a screen none
// matches passes (RuleScreen). The background is the most common colour;
// a pixel is background when it is within Rules.Tolerance (24) of it in
// each of red, green and blue.
//
//  1. RuleBlueScreen, a Windows stop screen: the background is within
//     the tolerance of one of Rules.BlueScreenColors (the #0000AA of
//     Windows NT to XP, navy, and the blues of Windows 8 to 11) and
//     covers at least Rules.BlueCoverage (50%) of the screen.
//  2. RuleBlank, a blank or nearly one-coloured screen: at most
//     Rules.BlankRows (1%) of the pixel rows hold any pixel that is not
//     background (a blinking cursor does not count; a line of text does).
//  3. RuleBootLoaderText, a boot loader's or firmware's error: the
//     background is dark (luma at most Rules.DarkLuma, 64) and fewer than
//     Rules.MinTextRows (30%) of the pixel rows hold text — in an 80 × 25
//     text mode, fewer than about nine lines ("No bootable device",
//     "error: no such partition. grub rescue>", "Operating System not
//     found", a boot sector's "Missing operating system").
//
// A negative BlankRows, BlueCoverage or MinTextRows turns its rule off.
// The Verdict holds the outcome, the rule that decided, a sentence with
// its numbers, and the Measures (background colour and coverage, the
// fraction of pixel rows holding text, the number of text lines).
//
// The rules are simple and see only pixels, so they are wrong in ways
// one can predict: a Linux console that a getty cleared down to its login
// prompt has two lines of text on black and fails like a boot loader's
// error (where VMware Tools report a heartbeat, the heartbeat decides; or
// lower MinTextRows); a kernel panic fills the screen with text and
// passes; Windows 11 24H2's stop screen is black, and fails only when its
// text is short. Each rule's numbers come from screenshots of real boots
// (testdata/screens) as well as synthetic screens.
//
// # Screenshots
//
// Decode reads PNG files and binary PPM (P6) files, the format of QEMU's
// screendump; both are outside input and their size is checked against
// MaxWidth, MaxHeight and MaxPixels before their pixels are read.
//
// # The local boot check
//
// Local boots disks under qemu-system-x86_64 with no network, on the
// controller the standby VM gets (QEMU emulates pvscsi, LSI Logic SAS
// 1068, AHCI and NVMe) and its firmware (SeaBIOS, or OVMF for EFI when
// installed), sending every write to temporary files so the chain is
// never changed. After LocalOptions.Settle it takes a screenshot every
// Interval through the QMP monitor and judges it: the first that passes
// decides; a failing screen unchanged for Stable fails the check; when
// neither has happened by Timeout, the check times out (TimedOut). QEMU
// is killed whatever happened, and the screenshot that decided is kept
// as a PNG file in LocalOptions.Dir. It uses KVM where the host offers
// it, else emulation (TCG), which boots many times slower: raise the
// times.
//
// The tests boot a small Linux system built from Debian packages
// (internal/bootfixture) on AHCI and pvscsi under SeaBIOS and on AHCI
// under OVMF and expect a pass, and the same disk under a delta that
// zeroes its partition's boot sector and expect a failure by
// RuleBootLoaderText.
package bootcheck

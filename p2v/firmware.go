package p2v

import (
	"fmt"

	"github.com/standbykit/standbykit/aipimage"
)

// ParseFirmware reads "bios" or "efi": the words plans, image sets
// (aipimage.Firmware) and the example programs share.
func ParseFirmware(s string) (Firmware, error) {
	switch f := Firmware(s); f {
	case FirmwareBIOS, FirmwareEFI:
		return f, nil
	}
	return "", fmt.Errorf("p2v: firmware %q: want bios or efi", s)
}

// decideFirmware sets the plan's firmware from what the boot disk's
// partition table says (fromDisk, empty when it has none or it cannot be
// read) and what the image set recorded of the machine: the disk wins,
// the record stands in when the disk cannot tell, and BIOS when neither
// can.
func (p *Plan) decideFirmware(fromDisk Firmware, recorded aipimage.Firmware) {
	rec, err := ParseFirmware(string(recorded))
	switch {
	case fromDisk != "" && err == nil && rec != fromDisk:
		p.Firmware = fromDisk
		p.warnf("the image set records %s firmware, but the boot disk's partition table means %s: using %s", rec, fromDisk, fromDisk)
	case fromDisk != "":
		p.Firmware = fromDisk
	case err == nil:
		p.Firmware = rec
		p.warnf("the boot disk does not show its firmware (no partition table): %s, as the image set records", rec)
	default:
		p.Firmware = FirmwareBIOS
	}
}

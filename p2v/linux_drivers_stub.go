package p2v

import "github.com/standbykit/standbykit/p2v/ext4"

func (in Inspector) chooseLinuxController(plan *Plan, boot *ext4.FS, prefix string) {}

package appliance

import "strings"

// Version is the appliance's version: package esx redeploys an appliance
// whose annotation names another one. Bump it when the writer program,
// the payload format or the appliance's virtual hardware changes.
const Version = "2"

// annotationPrefix starts the notes of every appliance VM.
const annotationPrefix = "StandbyKit writer appliance"

// Annotation is the notes of an appliance VM of this Version: how package
// esx finds its appliance, and how a simulator recognises one.
func Annotation() string {
	return annotationPrefix + " version " + Version + ". It writes boot points into standby VMs' disks through ESXi's disk stack; StandbyKit powers it on and off. Do not use it."
}

// IsApplianceAnnotation tells whether a VM's notes mark it as a writer
// appliance, of any version.
func IsApplianceAnnotation(notes string) bool {
	return strings.HasPrefix(notes, annotationPrefix)
}

package bootpoint

// StandbyAnnotation lets the external tests make a VM that looks like a
// standby whose creation was interrupted.
var StandbyAnnotation = standbyAnnotation

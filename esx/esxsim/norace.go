//go:build !race

package esxsim

// RaceDetector tells whether this binary was built with -race (see
// race.go).
const RaceDetector = false

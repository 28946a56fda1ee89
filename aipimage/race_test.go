//go:build race

package aipimage

// raceEnabled shrinks the heaviest tests under the race detector, which
// slows their per-block work about tenfold.
const raceEnabled = true

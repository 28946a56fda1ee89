//go:build !race

package aipimage

const raceEnabled = false

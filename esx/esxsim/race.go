//go:build race

package esxsim

// RaceDetector tells whether this binary was built with -race: vcsim
// (govmomi's simulator under esxsim) has data races of its own between
// concurrent VM creations or destructions and property reads, which tests
// that drive it from several clients at once trip over.
const RaceDetector = true

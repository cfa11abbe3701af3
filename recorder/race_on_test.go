//go:build race

package recorder_test

// raceEnabled: the test binary runs under the race detector, whose shadow
// memory (not the program's) is part of its RSS.
const raceEnabled = true

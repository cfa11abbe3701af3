package main

import (
	"bufio"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLogFormat: the text log prints durations with their unit and
// timestamps to the millisecond (not all ".000"); the JSON log gives
// durations as numbers of seconds and RFC 3339 times with milliseconds.
func TestLogFormat(t *testing.T) {
	e2e(t)
	t.Parallel()
	dir := t.TempDir()
	r := mustCLI(t, "demo", "--fast", "--speakers", "1", "--duration", "2s", "-y", "-o", filepath.Join(dir, "t.mp4"))
	if !regexp.MustCompile(`recording finalised .*duration=2\.0[0-9]{2}s`).MatchString(r.stderr) {
		t.Errorf("text log: no duration with its unit (duration=2.0xxs):\n%s", tail(r.stderr, 6))
	}
	stamps := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.(\d{3}) `).FindAllStringSubmatch(r.stderr, -1)
	zero := 0
	for _, m := range stamps {
		if m[1] == "000" {
			zero++
		}
	}
	if len(stamps) < 3 || zero == len(stamps) {
		t.Errorf("text log: %d timestamps, %d of them .000: want real milliseconds", len(stamps), zero)
	}

	r = mustCLI(t, "--log-format", "json", "demo", "--fast", "--speakers", "1", "--duration", "2s", "-y", "-o", filepath.Join(dir, "j.mp4"))
	found := false
	sc := bufio.NewScanner(strings.NewReader(r.stderr))
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("JSON log line %q: %v", sc.Text(), err)
		}
		if ts, _ := ev["time"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}`).MatchString(ts) {
			t.Errorf("JSON time %q: want RFC 3339 with milliseconds", ts)
		}
		if ev["message"] == "recording finalised" {
			found = true
			d, ok := ev["duration"].(float64)
			if !ok || d < 1.9 || d > 2.2 {
				t.Errorf("JSON duration %v (%T): want a number of seconds near 2", ev["duration"], ev["duration"])
			}
		}
	}
	if !found {
		t.Errorf("JSON log has no \"recording finalised\" line:\n%s", tail(r.stderr, 6))
	}
}

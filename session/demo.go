package session

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/roomcast/roomcast/room/synth"
)

// demoScheme is the embedded synthetic room's URL scheme. It is not a
// room/registry connector: the synthetic room feeds decoded pictures and
// sound straight into the compositor, with no room.Room in between.
const demoScheme = "demo"

func isDemo(roomURL string) bool {
	return strings.HasPrefix(strings.ToLower(roomURL), demoScheme+":")
}

// parseDemo reads demo:?speakers=4&busy=1&camera=1&turn=3s.
func parseDemo(roomURL string) (synth.Config, error) {
	cfg := synth.Config{Speakers: 4}
	_, q, _ := strings.Cut(roomURL, "?")
	v, err := url.ParseQuery(q)
	if err != nil {
		return cfg, fmt.Errorf("%w: demo URL %q: %v", ErrConfig, roomURL, err)
	}
	for k := range v {
		val := v.Get(k)
		switch k {
		case "speakers":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 16 {
				return cfg, fmt.Errorf("%w: demo speakers=%q (want 1 to 16)", ErrConfig, val)
			}
			cfg.Speakers = n
		case "busy":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return cfg, fmt.Errorf("%w: demo busy=%q (want 0 or 1)", ErrConfig, val)
			}
			cfg.Busy = b
		case "camera":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return cfg, fmt.Errorf("%w: demo camera=%q (want 0 or 1)", ErrConfig, val)
			}
			cfg.Camera = b
		case "turn":
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return cfg, fmt.Errorf("%w: demo turn=%q (want a duration, e.g. 3s)", ErrConfig, val)
			}
			cfg.Turn = d
		default:
			return cfg, fmt.Errorf("%w: demo URL: unknown parameter %q (speakers, busy, camera, turn)", ErrConfig, k)
		}
	}
	return cfg, nil
}

package session

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/consent"
	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/room"
)

// Config describes one broadcast. Zero values take the documented defaults.
type Config struct {
	// Room is the room URL; its scheme picks the connector (room/registry):
	// wss://livekit.example.org/weekly-webinar, … The scheme "demo" is the
	// embedded synthetic room: demo:?speakers=4&busy=1&turn=3s (speakers
	// 1–16, default 4; busy=1 fills the pictures with moving noise; camera=1
	// makes them cost what webcams cost to encode (room/synth); turn is
	// how long each speaker talks).
	Room string
	// Credentials for the room; never logged.
	Credentials room.Credentials
	// Identity and Name are roomcast's own in the room (connector defaults).
	Identity, Name string
	// ConnectTimeout bounds the join. It defaults to 10 s.
	ConnectTimeout time.Duration
	// Consent says who may be recorded (--only, --exclude, the opt-out
	// attribute); it is enforced between the room and the recorder, before
	// any decoder. The zero value lets everyone in, except participants
	// who opt out with roomcast.consent=no.
	Consent consent.Policy
	// Heard lists identities that are heard but get no camera tile (their
	// screen shares still show): a screen-share recording's presenter. It
	// defaults to none.
	Heard []string
	// Announce is what roomcast tells the room when the recording starts
	// and stops (a chat message and its recording attribute, where the
	// connector is a room.Announcer: LiveKit).
	Announce Announce

	// Pipeline is the canvas, layout and encoding. Its Log is replaced by
	// the session's; live-room settings (external active speaker, automatic
	// screen share layout, OnTiles) are filled in by the session.
	Pipeline recorder.Config

	// Outputs: the recording, HLS and/or the streams. At least one is
	// required.
	Outputs Outputs

	// Duration stops the recording after this much media (0: no limit).
	Duration time.Duration
	// Until stops the recording at this wall-clock time (zero: none).
	Until time.Time
	// WaitFirstSpeaker starts the recording (and creates the outputs) only
	// when the first speaker publishes, giving up with ErrNoSpeaker after
	// this long. 0 records at once.
	WaitFirstSpeaker time.Duration
	// EmptyTimeout stops the recording once the room has been empty this
	// long. 0 never stops for that (the CLI's default is 60 s).
	EmptyTimeout time.Duration

	// Log is the session's logger: every component of the session (room,
	// decoders, compositor, encoders, outputs, and FFmpeg's and the LiveKit
	// SDK's lines for them) logs through it. The zero Logger discards.
	Log zerolog.Logger
	// OnSelf, if set, is called when someone else changes roomcast's own
	// participant in the room (LiveKit's UpdateLayout sets its metadata to
	// {"layout": …}), from the room's event goroutine (it must not block).
	OnSelf func(room.Participant)
	// OnEvent, if set, is called for every event, from the session's
	// goroutine (it must not block). Events() is the channel alternative.
	OnEvent func(Event)
}

// Announce configures the start and stop announcements.
type Announce struct {
	// Off sends no announcement and leaves roomcast's recording attribute
	// alone (--no-announce).
	Off bool
	// Start and Stop are the chat messages. They default to
	// DefaultAnnounceStart(…) for the session's outputs and
	// DefaultAnnounceStop.
	Start, Stop string
}

// DefaultAnnounceStop is the stop announcement unless configured.
const DefaultAnnounceStop = "roomcast has stopped recording this meeting."

// DefaultAnnounceStart is the start announcement unless configured, for a
// session that records (an MP4 or HLS recording) and/or streams.
func DefaultAnnounceStart(recorded, streamed bool) string {
	switch {
	case recorded && streamed:
		return "● This meeting is being recorded and streamed live by roomcast."
	case streamed:
		return "● This meeting is being streamed live by roomcast."
	}
	return "● This meeting is being recorded by roomcast."
}

// DefaultConnectTimeout bounds a join when Config.ConnectTimeout is zero.
const DefaultConnectTimeout = 10 * time.Second

func (c *Config) check() error {
	if c.Room == "" {
		return fmt.Errorf("%w: no room URL", ErrConfig)
	}
	if c.Outputs.MP4 == "" && len(c.Outputs.Streams) == 0 && c.Outputs.HLS.Dir == "" {
		return fmt.Errorf("%w: no output (an MP4 path, an HLS directory and/or stream destinations)", ErrConfig)
	}
	if c.Announce.Start == "" {
		c.Announce.Start = DefaultAnnounceStart(c.Outputs.MP4 != "" || c.Outputs.HLS.Dir != "", len(c.Outputs.Streams) > 0)
	}
	if c.Announce.Stop == "" {
		c.Announce.Stop = DefaultAnnounceStop
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.Duration < 0 || c.WaitFirstSpeaker < 0 || c.EmptyTimeout < 0 || c.ConnectTimeout < 0 {
		return fmt.Errorf("%w: negative duration", ErrConfig)
	}
	return nil
}

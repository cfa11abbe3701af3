package serve

import (
	"context"
	"errors"
	"time"

	"filippo.io/age"
	"github.com/rs/zerolog"
)

// What the server needs from a running broadcast, defined here at the
// consumer: the pipeline itself (room → compositor → encoders → outputs)
// lives elsewhere and is adapted to these two interfaces.

// Spec is what one broadcast should do.
type Spec struct {
	// Room is the room URL: "demo:" (the embedded synthetic room, options as
	// a query: demo:?speakers=3&busy=1), or a supported meeting server URL.
	Room string
	// Layout is grid, speaker, single or screenshare.
	Layout string
	// Width and Height of the picture.
	Width, Height int
	// Output is the MP4 path to write; empty: no recording.
	Output string
	// Destinations are RTMP(S) URLs with their keys (secret: never logged).
	Destinations []Destination
	// Duration stops the broadcast after this long (0: until Stop).
	Duration time.Duration
	// HLSDir, when not empty, receives the broadcast as HLS for the watch
	// page; HLSReplay keeps every segment so the playlist becomes the
	// replay at the end (otherwise only the live window is kept).
	HLSDir    string
	HLSReplay bool
	// Labels is what tiles show of names: name (default), initials, none.
	Labels string
	// Encrypt encrypts Output as it is written to these age recipients.
	Encrypt []age.Recipient
}

// Destination is one RTMP(S) target. URL includes the stream key.
type Destination struct {
	Name string
	URL  string
}

// DestinationStatus is one destination's live state.
type DestinationStatus struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	Reconnects int64  `json:"reconnects"`
	Dropped    uint64 `json:"dropped_packets"`
	// Message says, for the host, what is wrong when the destination is
	// down (never with its key).
	Message string `json:"message,omitempty"`
}

// Status is a snapshot of a running broadcast. Safe to read at any time.
type Status struct {
	State    string        `json:"state"`
	Elapsed  time.Duration `json:"-"`
	Speakers int           `json:"speakers"` // participants in the room
	// SpeakerNames is what the tiles show of the names of the people on
	// the picture now (per Spec.Labels; empty under "none").
	SpeakerNames []string `json:"speaker_names"`
	// FramesOut counts encoded video frames; Dropped counts output frames
	// lost (late beyond real time, or dropped by a destination's queue).
	FramesOut int64 `json:"frames_out"`
	Dropped   int64 `json:"dropped_frames"`
	// Degraded counts output frames repeated or skipped because encoding
	// could not keep real time (the broadcast stayed live).
	Degraded     int64               `json:"degraded_frames"`
	BytesWritten int64               `json:"bytes_written"`
	Destinations []DestinationStatus `json:"destinations"`
	// X264Preset is the encoder's x264 preset now; PresetStepDowns counts
	// its steps down because encoding stayed slower than real time.
	X264Preset      string `json:"x264_preset,omitempty"`
	PresetStepDowns int64  `json:"preset_step_downs"`
	// Network: what the room's connection received and repaired.
	Network NetworkStatus `json:"network"`
}

// NetworkStatus sums a broadcast's receive counters over all its tracks
// (room.TrackStats).
type NetworkStatus struct {
	// Packets received; Lost given up on (never came, or too late);
	// Late arrived after their turn; Repaired filled a hole in time.
	Packets  uint64 `json:"packets"`
	Lost     uint64 `json:"lost"`
	Late     uint64 `json:"late"`
	Repaired uint64 `json:"repaired"`
	// NACKed: sequence numbers asked for again; Retransmissions received
	// (RTX); KeyframeRequests: PLIs sent.
	NACKed           uint64 `json:"nacked"`
	Retransmissions  uint64 `json:"retransmissions"`
	KeyframeRequests uint64 `json:"keyframe_requests"`
}

// Add adds o to n.
func (n *NetworkStatus) Add(o NetworkStatus) {
	n.Packets += o.Packets
	n.Lost += o.Lost
	n.Late += o.Late
	n.Repaired += o.Repaired
	n.NACKed += o.NACKed
	n.Retransmissions += o.Retransmissions
	n.KeyframeRequests += o.KeyframeRequests
}

// Broadcast is one running broadcast.
type Broadcast interface {
	// Stop asks the broadcast to end and finalise; idempotent, returns at once.
	Stop()
	// Wait blocks until the broadcast has ended and its recording is
	// finalised; the error says why it failed (nil for a clean stop).
	Wait() error
	// Status is a snapshot; never blocks for long.
	Status() Status
}

// Runner starts broadcasts.
type Runner interface {
	// Start joins the room and starts the outputs; an error means nothing
	// runs and nothing was recorded (errors wrapping ErrRoom or ErrStream
	// are the user's to fix and are shown as such).
	Start(ctx context.Context, spec Spec, log zerolog.Logger) (Broadcast, error)
}

// Errors a Runner returns that are the user's to fix.
var (
	ErrRoom   = errors.New("cannot join the room")
	ErrStream = errors.New("a stream destination refused the stream")
	ErrSpec   = errors.New("invalid broadcast settings")
)

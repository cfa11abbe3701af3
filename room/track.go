package room

// Track is a subscribed remote track. Its exported fields describe it as it
// was when added and are not updated (mutes arrive as Handler.TrackMuted).
// Its methods are safe to call from any goroutine; they do nothing when the
// connector gave no Control (a track built in a test, say).
type Track struct {
	// SID is the server's track ID, unique in the room; TrackMuted names
	// tracks by it.
	SID string
	// ParticipantID is the publisher's identity (Participant.ID);
	// ParticipantName its display name.
	ParticipantID, ParticipantName string
	Kind                           Kind
	Source                         Source
	// Codec is the roomcast codec name ("h264", "vp8", "vp9", "av1",
	// "opus"), as in Frame.Codec.
	Codec string
	// Muted is the publisher's mute state when the track was added.
	Muted bool
	// Width and Height are the published size of the largest layer, 0 for
	// audio or when the publisher did not say.
	Width, Height int
	// Simulcast is true when the publisher sends several layers; the server
	// picks one after SetVideoDimensions.
	Simulcast bool
	// Control is the connector's side of the track. Consumers call the
	// methods below instead.
	Control TrackControl
}

// TrackControl is what a connector does for one track on request. The
// methods are called from any goroutine (Handler methods, the track's
// sink, the compositor's layout callback) and must not block on the
// network.
type TrackControl interface {
	// RequestKeyframe asks the publisher for a keyframe (RTCP PLI through
	// the server), rate-limited by the connector; extra requests are
	// ignored.
	RequestKeyframe()
	// SetVideoDimensions tells the server the size the track is shown at,
	// so that it forwards the smallest simulcast layer (or SVC layer) that
	// covers it. Servers without layer selection ignore it.
	SetVideoDimensions(width, height int)
	// Stats returns the track's counters.
	Stats() TrackStats
}

// RequestKeyframe asks the publisher for a keyframe: for decoders that
// failed, tracks just unmuted and tiles that grew. Rate-limited.
func (t *Track) RequestKeyframe() {
	if t.Control != nil {
		t.Control.RequestKeyframe()
	}
}

// SetVideoDimensions tells the server the size the track is shown at (see
// TrackControl). It ignores audio tracks and empty sizes.
func (t *Track) SetVideoDimensions(width, height int) {
	if t.Control != nil && t.Kind == KindVideo && width > 0 && height > 0 {
		t.Control.SetVideoDimensions(width, height)
	}
}

// Stats returns the track's counters since it was added.
func (t *Track) Stats() TrackStats {
	if t.Control == nil {
		return TrackStats{}
	}
	return t.Control.Stats()
}

// TrackStats are counters of one track since it was added.
type TrackStats struct {
	Packets, Bytes uint64
	// QueueDrops counts packets dropped because the worker fell behind.
	QueueDrops uint64
	// Malformed counts packets that did not parse as RTP.
	Malformed uint64
	// Late and Lost come from the jitter buffer: packets that arrived after
	// their turn, and packets given up on (never received, or later than
	// the buffer's latency). Duplicates arrived twice (a retransmission of
	// a packet that was only late); Repaired filled a hole in the sequence
	// in time (a reordered packet or a NACK retransmission).
	Late, Lost, Duplicates, Repaired uint64
	// NACKs counts the RTCP NACK packets the connection sent about this
	// track and NACKed the sequence numbers they asked for again (the
	// connector's NACK generator; 0 where it is not counted).
	// Retransmissions are the packets received on the RTX repair stream
	// (RFC 4588); a server that retransmits on the media stream itself
	// shows up in Repaired and Duplicates instead.
	NACKs, NACKed, Retransmissions uint64
	// Frames were delivered; Broken were incomplete or undecodable;
	// WaitingKey were whole but dropped while waiting for a keyframe;
	// Blank were LiveKit's placeholder keyframes.
	Frames, Keyframes, Broken, WaitingKey, Blank uint64
	// KeyframeRequests counts keyframe requests (PLI) sent.
	KeyframeRequests uint64
	// SenderReports counts RTCP sender reports received.
	SenderReports uint64
}

// Add adds o's counters to s (totals over several tracks).
func (s *TrackStats) Add(o TrackStats) {
	s.Packets += o.Packets
	s.Bytes += o.Bytes
	s.QueueDrops += o.QueueDrops
	s.Malformed += o.Malformed
	s.Late += o.Late
	s.Lost += o.Lost
	s.Duplicates += o.Duplicates
	s.Repaired += o.Repaired
	s.NACKs += o.NACKs
	s.NACKed += o.NACKed
	s.Retransmissions += o.Retransmissions
	s.Frames += o.Frames
	s.Keyframes += o.Keyframes
	s.Broken += o.Broken
	s.WaitingKey += o.WaitingKey
	s.Blank += o.Blank
	s.KeyframeRequests += o.KeyframeRequests
	s.SenderReports += o.SenderReports
}

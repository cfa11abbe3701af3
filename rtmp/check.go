package rtmp

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/roomcast/roomcast/media"
)

// PacketSource yields encoded packets in decode order (audio and video
// interleaved as the encoder produced them); io.EOF ends it.
type PacketSource interface {
	NextPacket() (media.Packet, error)
}

// IngestReport is what CheckIngest learned about a destination.
type IngestReport struct {
	Destination string // redacted
	// Accepted is true when the server accepted the publish and kept the
	// connection for the whole test.
	Accepted bool
	// Err says why not (a rejection, a timeout, a drop mid-test).
	Err error
	// ServerVersion is the fmsVer the server announced in connect's answer.
	ServerVersion string
	// ConnectTime is the time from dialing to NetStream.Publish.Start.
	ConnectTime time.Duration
	// ServerChunkSize is the chunk size the server announced (128 when it
	// announced none); ClientChunkSize is ours.
	ServerChunkSize, ClientChunkSize uint32
	// Sent is the media duration pushed; Elapsed the wall time it took.
	Sent, Elapsed time.Duration
	Packets       uint64
	Bytes         uint64  // on the wire, RTMP framing included
	Bitrate       float64 // Bytes*8 / Elapsed, in bits/s
	DroppedVideo  uint64
	DroppedAudio  uint64
}

// CheckIngest pushes packets from src to the destination configured in p
// (not started; reconnection is turned off) in real time for at most d of
// media, then closes and reports. It is what a host runs before an event:
// is the key accepted, does the stream stay up, which bitrate gets through.
// The returned error is the report's Err.
func CheckIngest(ctx context.Context, p *Publisher, src PacketSource, d time.Duration) (*IngestReport, error) {
	p.Backoff.Disabled = true
	r := &IngestReport{Destination: Redact(p.URL)}
	if p.Dest != nil {
		r.Destination = p.Dest.String()
	}

	if err := p.Start(ctx); err != nil {
		r.Err = err
		return r, err
	}
	r.ClientChunkSize = p.ChunkSize
	r.ConnectTime = time.Duration(p.connectDur.Load())
	if v := p.fmsVer.Load(); v != nil {
		r.ServerVersion = *v
	}
	streamStart := time.Now()
	var first time.Duration
	haveFirst := false
	var streamErr error
loop:
	for {
		pkt, err := src.NextPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			streamErr = err
			break
		}
		at := decodeTime(&pkt)
		if !haveFirst {
			first, haveFirst = at, true
		}
		if at-first > d {
			break
		}
		r.Sent = max(r.Sent, at-first)
		// Pace by media time: the ingest sees a live stream, and the
		// achieved bitrate means something.
		if wait := time.Until(streamStart.Add(at - first)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				streamErr = ctx.Err()
				break loop
			case <-p.Done():
				t.Stop()
				break loop
			}
		}
		select {
		case <-p.Done():
			break loop
		default:
		}
		p.WritePacket(pkt)
	}
	_ = p.Close()
	st := p.Stats()
	r.Elapsed = time.Since(streamStart)
	r.ServerChunkSize = st.ServerChunkSize
	r.Packets, r.Bytes = st.Packets, st.Bytes
	r.DroppedVideo, r.DroppedAudio = st.DroppedVideo, st.DroppedAudio
	if r.Elapsed > 0 {
		r.Bitrate = float64(r.Bytes) * 8 / r.Elapsed.Seconds()
	}
	switch {
	case p.Err() != nil:
		r.Err = p.Err()
	case streamErr != nil:
		r.Err = streamErr
	case st.Outages > 0:
		r.Err = st.LastError
	}
	r.Accepted = r.Err == nil
	return r, r.Err
}

// Package rtmp publishes roomcast's encoded output (H.264 + AAC media.Packets)
// to RTMP and RTMPS ingests: PeerTube, Owncast, YouTube-compatible services,
// nginx-rtmp and anything else that speaks Adobe's RTMP.
//
// The transport is yutopp/go-rtmp v0.0.7, used below its ClientConn: roomcast
// dials the socket itself and drives go-rtmp's handshake, chunk streamer and
// message codecs, because the ClientConn has no dial or handshake timeout,
// waits forever for connect/createStream answers, crashes its read loop on the
// publish stream's onStatus and so cannot report NetStream.Publish.BadName.
// Every step here is bounded and every rejection becomes an error that names
// its cause (see the Err* values).
//
// Threading: each Publisher has one goroutine that owns its connection: it
// dials, reconnects, answers the server and sends whatever is queued.
// Media is encoded into chunks by this package and written in one write
// per batch; when the connection is idle (nothing queued, no write under
// way), WritePacket does that itself, with a non-blocking write, and leaves
// only what the socket could not take at once to the Publisher's goroutine,
// which is written before anything else. So in the steady state a packet
// costs no goroutine hand-off, and a slow link still never blocks the
// caller. Commands go through go-rtmp's chunk streamer (its own goroutine);
// a read loop per connection only reads. Metadata, audio and video share
// one chunk stream so that the server receives them in exactly the order
// sent.
//
// The pieces:
//   - flv.go: pure FLV/AVC packaging (Annex B to AVCC, the decoder
//     configuration record, tag bodies, onMetaData);
//   - Publisher: one destination, non-blocking WritePacket, reconnects;
//   - Fanout: several destinations fed from one encode;
//   - CheckIngest: a short test publish that reports what the ingest did;
//   - Presets, ResolveURL and Redact: destination settings and secrets.
//
// Stream keys are secrets: nothing in this package logs or returns a URL
// without passing it through Redact, and server messages are scrubbed of the
// key before they reach an error or a log line.
package rtmp

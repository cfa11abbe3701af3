package livekit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/roomcast/roomcast/room"
)

var _ room.Announcer = (*Room)(nil)

// Chat topics LiveKit's standard clients show. livekit-client 2.x with
// @livekit/components ≥ 0.12 (useChat, the VideoConference chat panel)
// reads text streams on ChatTopic; components 0.11 read the ChatMessage
// data packet (RoomEvent.ChatMessage); older ones a JSON user packet on
// LegacyChatTopic, which newer ones skip when it says ignoreLegacy (they
// got the message as a stream). roomcast sends all three, as the
// components' own send does, so each client shows the message once.
const (
	ChatTopic       = "lk.chat"
	LegacyChatTopic = "lk-chat-topic"
)

// RecordingAttribute is roomcast's own participant attribute ("true" while
// it records, "false" after) for UIs that show a recording indicator per
// participant. The room-wide flag (livekit-client's room.isRecording) comes
// from the recorder grant instead; this attribute is what remains where the
// token has no such grant. A hidden participant's attributes reach nobody,
// so it is set only by a visible roomcast.
const RecordingAttribute = "roomcast.recording"

// announceSettle is how long Announce waits after its data packets when it
// has no round trip to wait for (no attribute update), so that a Close
// right after does not cut them off in the data channel's send buffer.
const announceSettle = 300 * time.Millisecond

// rawPacket hands the SDK a data packet built here (text streams are
// written by hand so that a failure to send is an error, not a log line of
// the SDK's background writer).
type rawPacket struct{ p *livekit.DataPacket }

func (r rawPacket) ToProto() *livekit.DataPacket { return r.p }

// Announce sends a.Text as a chat message to everyone in the room and sets
// RecordingAttribute to a.Recording, as far as the token allows: without
// canPublishData there is no message, without canUpdateOwnMetadata no
// attribute; either returns an error wrapping room.ErrNotPermitted (after
// doing the part that is allowed).
func (r *Room) Announce(ctx context.Context, a room.Announcement) error {
	select {
	case <-r.done:
		return ErrClosed
	default:
	}
	lp := r.lk.LocalParticipant
	perm := lp.Permissions()
	var missing []string
	sent := false
	if a.Text != "" {
		if perm == nil || !perm.CanPublishData {
			missing = append(missing, "canPublishData (no chat message)")
		} else {
			if err := r.sendChat(lp, a.Text); err != nil {
				return fmt.Errorf("livekit: announcement: %w", err)
			}
			sent = true
		}
	}
	value := "false"
	if a.Recording {
		value = "true"
	}
	switch {
	case perm != nil && perm.Hidden:
		// Nobody sees a hidden participant's attributes: the room's
		// recording flag (recorder grant) is the indicator.
	case perm == nil || !perm.CanUpdateMetadata:
		missing = append(missing, "canUpdateOwnMetadata (no "+RecordingAttribute+" attribute)")
	case lp.Attributes()[RecordingAttribute] != value:
		lp.SetAttributes(map[string]string{RecordingAttribute: value})
		// The server confirms with roomcast's own participant update: wait
		// for it (it also gives the chat packets their time on the wire).
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for lp.Attributes()[RecordingAttribute] != value {
			select {
			case <-ctx.Done():
				return fmt.Errorf("livekit: announcement: attribute not confirmed: %w", ctx.Err())
			case <-r.done:
				return ErrClosed
			case <-tick.C:
			}
		}
		sent = false
	}
	if sent {
		select {
		case <-time.After(announceSettle):
		case <-ctx.Done():
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: the token lacks %v", room.ErrNotPermitted, missing)
	}
	return nil
}

// sendChat sends text the three ways LiveKit clients read chat (see
// ChatTopic), reliably.
func (r *Room) sendChat(lp *lksdk.LocalParticipant, text string) error {
	id := newID()
	now := time.Now().UnixMilli()
	size := uint64(len(text))
	reliable := lksdk.WithDataPublishReliable(true)
	// A text stream: header, one chunk (an announcement is far below the
	// 15 kB chunk size), trailer.
	for _, p := range []*livekit.DataPacket{
		{Value: &livekit.DataPacket_StreamHeader{StreamHeader: &livekit.DataStream_Header{
			StreamId: id, Timestamp: now, Topic: ChatTopic, MimeType: "text/plain", TotalLength: &size,
			ContentHeader: &livekit.DataStream_Header_TextHeader{TextHeader: &livekit.DataStream_TextHeader{
				OperationType: livekit.DataStream_CREATE,
			}},
		}}},
		{Value: &livekit.DataPacket_StreamChunk{StreamChunk: &livekit.DataStream_Chunk{StreamId: id, Content: []byte(text)}}},
		{Value: &livekit.DataPacket_StreamTrailer{StreamTrailer: &livekit.DataStream_Trailer{StreamId: id}}},
	} {
		if err := lp.PublishDataPacket(rawPacket{p}, reliable); err != nil {
			return err
		}
	}
	if err := lp.PublishDataPacket(&livekit.ChatMessage{Id: id, Timestamp: now, Message: text}, reliable); err != nil {
		return err
	}
	legacy, err := json.Marshal(struct {
		ID           string `json:"id"`
		Timestamp    int64  `json:"timestamp"`
		Message      string `json:"message"`
		IgnoreLegacy bool   `json:"ignoreLegacy"`
	}{id, now, text, true})
	if err != nil {
		return err
	}
	return lp.PublishDataPacket(lksdk.UserData(legacy), reliable, lksdk.WithDataPublishTopic(LegacyChatTopic))
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

package livekit

import "github.com/roomcast/roomcast/room"

// Sentinel errors. Errors returned by Start and passed to Handler.RoomClosed
// wrap one of these; test with errors.Is. Each is also the room sentinel of
// its kind (errors.Is(err, room.ErrUnauthorized) holds for ErrUnauthorized
// and ErrRoomMismatch), which is all the command needs for its exit codes.
// ErrConfig, ErrUnauthorized, ErrRoomMismatch and ErrRoomNotFound are caused
// by the user's input; ErrConnect by the network or server.
var (
	// ErrConfig: the Config is incomplete or contradictory.
	ErrConfig = room.NewSentinel(room.ErrConfig, "livekit: invalid configuration")
	// ErrUnauthorized: the server rejected the token (bad signature, expired,
	// wrong API key or secret, missing roomJoin grant).
	ErrUnauthorized = room.NewSentinel(room.ErrUnauthorized, "livekit: unauthorized")
	// ErrRoomMismatch: the access token grants a different room than the one
	// asked for.
	ErrRoomMismatch = room.NewSentinel(room.ErrUnauthorized, "livekit: token is for another room")
	// ErrRoomNotFound: the room does not exist and the server does not create
	// rooms on join.
	ErrRoomNotFound = room.NewSentinel(room.ErrNotFound, "livekit: room not found")
	// ErrConnect: the server could not be reached or the WebRTC connection
	// did not come up in time.
	ErrConnect = room.NewSentinel(room.ErrUnreachable, "livekit: cannot connect")
	// ErrRoomClosed: the server closed the room (deleted by an admin or
	// empty-timeout) or removed this participant.
	ErrRoomClosed = room.NewSentinel(room.ErrRoomClosed, "livekit: room closed")
	// ErrDisconnected: the connection was lost and reconnecting gave up.
	ErrDisconnected = room.NewSentinel(room.ErrDisconnected, "livekit: disconnected")
	// ErrClosed: the Room was closed by its owner.
	ErrClosed = room.NewSentinel(room.ErrClosed, "livekit: closed")
)

package livekit

import "errors"

// Sentinel errors. Errors returned by Start and passed to Handler.RoomClosed
// wrap one of these; test with errors.Is. ErrConfig, ErrUnauthorized,
// ErrRoomMismatch and ErrRoomNotFound are caused by the user's input; ErrConnect
// by the network or server.
var (
	// ErrConfig: the Config is incomplete or contradictory.
	ErrConfig = errors.New("livekit: invalid configuration")
	// ErrUnauthorized: the server rejected the token (bad signature, expired,
	// wrong API key or secret, missing roomJoin grant).
	ErrUnauthorized = errors.New("livekit: unauthorized")
	// ErrRoomMismatch: the access token grants a different room than the one
	// asked for.
	ErrRoomMismatch = errors.New("livekit: token is for another room")
	// ErrRoomNotFound: the room does not exist and the server does not create
	// rooms on join.
	ErrRoomNotFound = errors.New("livekit: room not found")
	// ErrConnect: the server could not be reached or the WebRTC connection
	// did not come up in time.
	ErrConnect = errors.New("livekit: cannot connect")
	// ErrRoomClosed: the server closed the room (deleted by an admin or
	// empty-timeout) or removed this participant.
	ErrRoomClosed = errors.New("livekit: room closed")
	// ErrDisconnected: the connection was lost and reconnecting gave up.
	ErrDisconnected = errors.New("livekit: disconnected")
	// ErrClosed: the Room was closed by its owner.
	ErrClosed = errors.New("livekit: closed")
)

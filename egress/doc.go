// Package egress makes roomcast a LiveKit Egress worker: it registers on
// livekit-server's Redis message bus (psrpc: the EgressInternal and
// EgressHandler services), bids for start requests with an affinity from its
// spare CPU, runs each accepted request as a roomcast session (package
// session: the same pipeline as `roomcast record`), and reports EgressInfo
// updates (starting, active, ending, complete, failed with a reason) back
// through the IOInfo service, from which the server answers ListEgress and
// sends its egress webhooks.
//
// Wire facts (livekit-server 1.13.5, livekit/protocol
// v1.50.5-0.20260728075222-28e604c046c6, psrpc v0.7.2): the server sends
// StartEgress on the empty topic to every worker, each answers with an
// affinity (a negative one: no bid), the highest wins (1 at once, else the
// best within a second); the winner's EgressInfo is stored by the server
// (IOInfo.CreateEgress → egress_started). StopEgress, UpdateStream and
// UpdateEgress go to the topic named by the egress ID, so only its worker
// answers. A worker that dies cannot report; the others notice its leases
// expire in Redis and report its egresses failed.
package egress

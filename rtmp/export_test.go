package rtmp

// InlineCounts reports how many packets WritePacket sent itself and how
// many of those writes the socket did not take whole.
func InlineCounts(p *Publisher) (sent, partial uint64) {
	return p.inlineSent.Load(), p.inlinePartial.Load()
}

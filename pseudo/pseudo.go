// Package pseudo names participants in logs by an opaque id that is stable
// within one session and unrelated across sessions (GDPR data
// minimisation: an info-level log says what happened, not to whom).
package pseudo

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
)

// Namer maps identities to opaque ids with a random per-session key. The
// zero value and a nil Namer return "p-unknown"; use New. Safe for
// concurrent use (it is immutable).
type Namer struct{ key []byte }

// New makes a Namer with a fresh random key.
func New() *Namer {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("pseudo: no randomness: " + err.Error())
	}
	return &Namer{key: k}
}

// ID is identity's opaque id in this session, "p-" and 8 hex digits.
func (n *Namer) ID(identity string) string {
	if n == nil || n.key == nil {
		return "p-unknown"
	}
	m := hmac.New(sha256.New, n.key)
	m.Write([]byte(identity))
	return "p-" + hex.EncodeToString(m.Sum(nil)[:4])
}

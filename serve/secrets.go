package serve

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// keys are the server's working keys, each derived from the one server
// secret (HMAC-SHA256 of a purpose label), so a leak of one never gives
// another.
type keys struct {
	seal  cipher.AEAD // AES-256-GCM for stream keys at rest
	links []byte      // signs download links
}

func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("roomcast/" + purpose))
	return m.Sum(nil)
}

func newKeys(secret []byte) (*keys, error) {
	if len(secret) < 16 {
		return nil, errors.New("server secret too short (want at least 16 bytes)")
	}
	blk, err := aes.NewCipher(deriveKey(secret, "seal"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	return &keys{seal: aead, links: deriveKey(secret, "links")}, nil
}

// loadSecret reads DIR/secret, creating it (0600, 32 random bytes) the
// first time.
func loadSecret(dir string) ([]byte, error) {
	p := filepath.Join(dir, "secret")
	b, err := os.ReadFile(p)
	if err == nil {
		return hex.DecodeString(strings.TrimSpace(string(b)))
	}
	if !os.IsNotExist(err) {
		return nil, err
	}
	s := make([]byte, 32)
	rand.Read(s)
	if err := os.WriteFile(p, []byte(hex.EncodeToString(s)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

// seal encrypts a secret for storage; the label binds it to its row so a
// ciphertext cannot be moved to another one.
func (k *keys) sealString(plain, label string) []byte {
	nonce := make([]byte, k.seal.NonceSize())
	rand.Read(nonce)
	return k.seal.Seal(nonce, nonce, []byte(plain), []byte(label))
}

func (k *keys) open(ct []byte, label string) (string, error) {
	n := k.seal.NonceSize()
	if len(ct) < n {
		return "", errors.New("sealed value too short")
	}
	p, err := k.seal.Open(nil, ct[:n], ct[n:], []byte(label))
	if err != nil {
		return "", fmt.Errorf("sealed value does not open (server secret changed?): %w", err)
	}
	return string(p), nil
}

// signLink returns the query of a download link for a recording valid
// until exp.
func (k *keys) signLink(id string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return "exp=" + e + "&sig=" + k.linkSig(id, e)
}

func (k *keys) linkSig(id, exp string) string {
	m := hmac.New(sha256.New, k.links)
	m.Write([]byte("download\x00" + id + "\x00" + exp))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkLink verifies a signed link at time now.
func (k *keys) checkLink(id, exp, sig string, now time.Time) error {
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return errors.New("bad link")
	}
	if !hmac.Equal([]byte(sig), []byte(k.linkSig(id, exp))) {
		return errors.New("bad link signature")
	}
	if now.Unix() > e {
		return errors.New("link expired")
	}
	return nil
}

// randomToken returns n random bytes, URL-safe encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokenHash is how session, API and setup tokens are stored: a leaked
// database gives no usable token.
func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

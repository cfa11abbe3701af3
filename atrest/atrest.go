// Package atrest encrypts recordings at rest with age (https://age-encryption.org/v1).
//
// A recording is encrypted as it is written: the plaintext goes through age's
// STREAM construction (ChaCha20-Poly1305 over 64 KiB chunks, each
// authenticated on its own) and only ciphertext reaches the file. A chunk is
// sealed, that is encrypted and handed to the file, once it is full and one
// more byte follows it (age marks the final chunk, so the last one is held
// back until Close). A process killed mid-recording therefore leaves every
// sealed chunk decryptable; the unsealed tail (less than 64 KiB plus at most
// one partly written chunk) is lost. The MP4 writer keeps that tail short by
// padding (see mp4.Options.Encrypt).
//
// The standard age tool decrypts a finished file (`age -d -i key.txt`);
// Decrypt here also reads a torn one up to its last sealed chunk.
package atrest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
)

// ChunkSize is the plaintext size of one age STREAM chunk (age v1 spec,
// "Payload": 64 KiB, the last chunk may be shorter).
const ChunkSize = 64 << 10

// Errors. Each is wrapped with the details (errors.Is works).
var (
	// ErrRecipient: a recipient (age1… public key) or recipients file is
	// invalid or unreadable.
	ErrRecipient = errors.New("atrest: bad recipient")
	// ErrIdentity: the identity (secret key) file is missing, unreadable or
	// holds no valid age identity.
	ErrIdentity = errors.New("atrest: bad identity file")
	// ErrWrongKey: none of the identities can open the file: it was
	// encrypted to other recipients.
	ErrWrongKey = errors.New("atrest: no identity matches the recording (wrong key)")
	// ErrNotEncrypted: the input does not start with an age header (not an
	// encrypted recording, or torn before its header was complete).
	ErrNotEncrypted = errors.New("atrest: not an age-encrypted file")
	// ErrTorn: the payload ends without age's final-chunk mark or with a
	// chunk that does not authenticate: the recording was cut short (a
	// crash) or damaged there. What came before is intact.
	ErrTorn = errors.New("atrest: encrypted payload cut short or damaged")
)

// Recipients parses public keys given one by one (each "age1…") and
// recipients files (one key a line, "#" comments, blank lines, as the age
// tool reads them).
func Recipients(keys, files []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, k := range keys {
		k = strings.TrimSpace(k)
		rs, err := age.ParseRecipients(strings.NewReader(k))
		if err != nil {
			// Do not echo the argument: a secret key pasted by mistake
			// would reach the terminal and logs.
			return nil, fmt.Errorf("%w: %q…: %v", ErrRecipient, prefix(k), err)
		}
		out = append(out, rs...)
	}
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRecipient, err)
		}
		rs, err := age.ParseRecipients(f)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrRecipient, p, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// prefix shows the key type only ("age1", "AGE-SECRET-KEY-1"…).
func prefix(k string) string {
	if i := strings.IndexByte(k, '1'); i >= 0 && i < 20 {
		return k[:i+1]
	}
	return ""
}

// Identities reads an identity file (age's format: "AGE-SECRET-KEY-1…"
// lines, "#" comments).
func Identities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrIdentity, path, err)
	}
	return ids, nil
}

// Writer encrypts a stream of plaintext to recipients and counts what is
// sealed.
type Writer struct {
	w   io.WriteCloser
	n   int64 // plaintext bytes accepted
	err error
}

// NewWriter writes the age header to dst at once and returns a writer for
// the payload. Close writes the final chunk; it does not close dst.
func NewWriter(dst io.Writer, recipients []age.Recipient) (*Writer, error) {
	if len(recipients) == 0 {
		return nil, fmt.Errorf("%w: none given", ErrRecipient)
	}
	w, err := age.Encrypt(dst, recipients...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRecipient, err)
	}
	return &Writer{w: w}, nil
}

// Write encrypts p. A chunk reaches dst as soon as it is full and followed
// by at least one byte. After an error of dst every call returns it.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.w.Write(p)
	if err != nil {
		w.err = err
		return 0, err
	}
	w.n += int64(n)
	return n, nil
}

// Written is the number of plaintext bytes accepted so far.
func (w *Writer) Written() int64 { return w.n }

// Sealed is the number of plaintext bytes already encrypted and handed to
// dst: every chunk but the one holding the last byte.
func (w *Writer) Sealed() int64 { return SealedAt(w.n) }

// SealedAt is Sealed for a stream of n plaintext bytes.
func SealedAt(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return (n - 1) / ChunkSize * ChunkSize
}

// PadToSeal is how many bytes must follow a stream of n plaintext bytes for
// all n to be sealed, at least min (a box header): it crosses the end of the
// chunk holding byte n-1 by at least one byte.
func PadToSeal(n int64, min int) int {
	if n <= 0 {
		return min
	}
	end := ((n-1)/ChunkSize + 1) * ChunkSize
	return max(int(end-n)+1, min)
}

// Close seals the last chunk with age's final mark. It is not idempotent
// (age refuses a second Close); the caller closes once.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	w.err = w.w.Close()
	if w.err == nil {
		w.err = errors.New("atrest: writer closed")
		return nil
	}
	return w.err
}

// Decrypt opens an encrypted stream with the given identities. Reading the
// returned reader yields the plaintext; a torn or damaged payload ends with
// an error wrapping ErrTorn after the last good chunk.
func Decrypt(src io.Reader, ids []age.Identity) (io.Reader, error) {
	r, err := age.Decrypt(src, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, fmt.Errorf("%w: %v", ErrWrongKey, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrNotEncrypted, err)
	}
	return &tornReader{r: r}, nil
}

// tornReader classifies the payload errors of age's reader.
type tornReader struct{ r io.Reader }

func (t *tornReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %v", ErrTorn, err)
	}
	return n, err
}

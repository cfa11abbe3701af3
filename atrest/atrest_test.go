package atrest

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
)

func newKey(t *testing.T) (*age.X25519Identity, string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(p, []byte("# test key\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return id, p
}

// countWriter records the size of every write age makes.
type countWriter struct {
	bytes.Buffer
	writes []int
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.writes = append(c.writes, len(p))
	return c.Buffer.Write(p)
}

// TestSealed checks Sealed against the ciphertext age actually emitted, and
// that PadToSeal bytes seal everything before them.
func TestSealed(t *testing.T) {
	id, _ := newKey(t)
	var dst countWriter
	w, err := NewWriter(&dst, []age.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	hdr := dst.Len()
	rng := rand.New(rand.NewPCG(1, 2))
	var plain []byte
	for i := 0; i < 300; i++ {
		b := make([]byte, rng.IntN(40000)+1)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if i%7 == 0 { // a seal point, as the MP4 writer makes one
			b = make([]byte, PadToSeal(w.Written(), 8))
		}
		before := w.Written()
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
		plain = append(plain, b...)
		chunks := int64(dst.Len()-hdr) / (ChunkSize + 16)
		if int64(dst.Len()-hdr)%(ChunkSize+16) != 0 {
			t.Fatalf("ciphertext is not whole chunks: %d", dst.Len()-hdr)
		}
		if got := chunks * ChunkSize; got != w.Sealed() {
			t.Fatalf("after %d bytes: sealed %d, age wrote %d chunks", w.Written(), w.Sealed(), chunks)
		}
		if i%7 == 0 && w.Sealed() < before {
			t.Fatalf("padding %d after %d bytes sealed only %d", len(b), before, w.Sealed())
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Decrypt(bytes.NewReader(dst.Bytes()), []age.Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("round trip: %d of %d bytes, %v", len(got), len(plain), err)
	}
}

func TestTornAndWrongKey(t *testing.T) {
	id, keyFile := newKey(t)
	other, _ := newKey(t)
	var dst bytes.Buffer
	w, err := NewWriter(&dst, []age.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	plain := bytes.Repeat([]byte("0123456789abcdef"), 3*ChunkSize/16+100)
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	// No Close: a crash. Then cut inside the next chunk as a torn write would.
	torn := append(dst.Bytes(), bytes.Repeat([]byte{0x55}, 1000)...)
	ids, err := Identities(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Decrypt(bytes.NewReader(torn), ids)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if !errors.Is(err, ErrTorn) {
		t.Errorf("torn payload: error %v, want ErrTorn", err)
	}
	if want := 3 * ChunkSize; len(got) != want || !bytes.Equal(got, plain[:want]) {
		t.Errorf("torn payload gave %d bytes, want the %d sealed ones", len(got), want)
	}

	if _, err := Decrypt(bytes.NewReader(torn), []age.Identity{other}); !errors.Is(err, ErrWrongKey) {
		t.Errorf("wrong key: %v, want ErrWrongKey", err)
	}
	if _, err := Decrypt(bytes.NewReader(plain), ids); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("plaintext: %v, want ErrNotEncrypted", err)
	}
	if _, err := Identities(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, ErrIdentity) {
		t.Errorf("missing identity file: %v", err)
	}
}

func TestRecipients(t *testing.T) {
	id, keyFile := newKey(t)
	rf := filepath.Join(t.TempDir(), "recipients.txt")
	if err := os.WriteFile(rf, []byte("# the archive\n\n"+id.Recipient().String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := Recipients([]string{id.Recipient().String()}, []string{rf})
	if err != nil || len(rs) != 2 {
		t.Fatalf("recipients: %d, %v", len(rs), err)
	}
	for _, bad := range [][2][]string{
		{{"age1notakey"}, nil},
		{{id.String()}, nil}, // a secret key by mistake
		{nil, {keyFile}},     // an identity file as recipients
		{nil, {filepath.Join(t.TempDir(), "none")}},
	} {
		_, err := Recipients(bad[0], bad[1])
		if !errors.Is(err, ErrRecipient) {
			t.Errorf("%v: %v, want ErrRecipient", bad, err)
		}
		if err != nil && bytes.Contains([]byte(err.Error()), []byte(id.String())) {
			t.Errorf("the error shows the secret key: %v", err)
		}
	}
}

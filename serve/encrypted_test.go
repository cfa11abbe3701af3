package serve

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/av"
)

// TestEncryptedDownloads: with --encrypt-to the recording is an age file at
// rest (no MP4 box on disk, no poster). A server holding the identity
// decrypts on download: the bytes are the plaintext MP4 (it plays), and a
// range request gets 206 with the right plaintext bytes. A server without
// it hands out the encrypted file (.mp4.age), ranges of the ciphertext,
// and the page says how to decrypt it.
func TestEncryptedDownloads(t *testing.T) {
	skipShort(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) {
		c.EncryptTo = []age.Recipient{id.Recipient()}
		c.Identities = []age.Identity{id}
	})
	e.secret = append(e.secret, id.String())
	c := e.api()
	r := recordDemo(t, c, 2*time.Second)
	if r.State != "ready" || !r.Encrypted || !r.Decrypted || r.Poster != "" || r.Duration < 1.5 || r.Size == 0 {
		t.Fatalf("encrypted recording %+v", r)
	}
	path := filepath.Join(e.dir, "recordings", r.ID+".mp4.age")
	ct := fileBytes(t, path)
	if !bytes.HasPrefix(ct, []byte("age-encryption.org/v1\n")) {
		t.Fatalf("the recording on disk is not an age file: %q", ct[:min(len(ct), 32)])
	}
	for _, box := range []string{"ftyp", "moov", "moof", "mdat"} {
		if bytes.Contains(ct, []byte(box)) {
			t.Errorf("MP4 box name %q appears in the encrypted file", box)
		}
	}
	if jpgs, _ := filepath.Glob(filepath.Join(e.dir, "recordings", "*.jpg")); len(jpgs) != 0 {
		t.Errorf("posters (plaintext pictures) on disk: %v", jpgs)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "recordings", r.ID+".mp4")); !os.IsNotExist(err) {
		t.Errorf("a plaintext MP4 next to the encrypted one: %v", err)
	}
	pr, err := age.Decrypt(bytes.NewReader(ct), id)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	anon := e.client()
	resp, got := anon.do("GET", r.DownloadURL, nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(got, plain) || resp.Header.Get("Content-Type") != "video/mp4" ||
		!strings.HasSuffix(resp.Header.Get("Content-Disposition"), `.mp4"`) {
		t.Fatalf("decrypted download: %d, %d bytes (plaintext %d), %s, %s", resp.StatusCode, len(got), len(plain),
			resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	out := filepath.Join(t.TempDir(), "dl.mp4")
	if err := os.WriteFile(out, got, 0o600); err != nil {
		t.Fatal(err)
	}
	// It plays: the 2 s recorded (the live compositor may skip pictures
	// on a loaded machine, so the length is the file's, not the last
	// picture's), every picture decodes.
	rd, err := av.OpenFile(out, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if d := rd.Info().Duration; d < 1500*time.Millisecond {
		t.Errorf("decrypted download holds %v, want about 2 s", d)
	}
	rd.Close()
	playable(t, out, 0)
	// A range across a 64 KiB chunk boundary, and the tail.
	for _, rg := range [][2]int{{65000, 66000}, {len(plain) - 100, len(plain) - 1}} {
		resp, part := anon.do("GET", r.DownloadURL, nil, map[string]string{"Range": "bytes=" + strconv.Itoa(rg[0]) + "-" + strconv.Itoa(rg[1])})
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, plain[rg[0]:rg[1]+1]) {
			t.Errorf("range %v: %d, %d bytes, equal %v", rg, resp.StatusCode, len(part), bytes.Equal(part, plain[rg[0]:min(rg[1]+1, len(plain))]))
		}
	}

	// The same data directory, restarted without the identity: the server
	// cannot read the recording and hands out the encrypted file.
	e.stop()
	e.cfg.Identities = nil
	e.start()
	c = e.api()
	recs := c.recordings()
	if len(recs) != 1 || !recs[0].Encrypted || recs[0].Decrypted {
		t.Fatalf("without the key: %+v", recs)
	}
	resp, got = anon.do("GET", recs[0].DownloadURL, nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(got, ct) || resp.Header.Get("X-Roomcast-Encrypted") != "age" ||
		!strings.HasSuffix(resp.Header.Get("Content-Disposition"), `.mp4.age"`) {
		t.Errorf("encrypted download: %d, %d bytes (file %d), %v", resp.StatusCode, len(got), len(ct), resp.Header)
	}
	resp, part := anon.do("GET", recs[0].DownloadURL, nil, map[string]string{"Range": "bytes=100-199"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, ct[100:200]) {
		t.Errorf("ciphertext range: %d, %d bytes", resp.StatusCode, len(part))
	}
	page := e.client()
	page.login("admin", adminPassword)
	_, html := page.do("GET", "/recordings", nil, nil)
	if !strings.Contains(string(html), "roomcast decrypt") {
		t.Errorf("the recordings page does not say how to decrypt")
	}
}

package serve

import (
	"io"
	"net/http"
	"os"
	"strings"

	"filippo.io/age"
)

// Encrypted recordings (Config.EncryptTo): written through atrest as age
// files, <id>.mp4.age. A server configured with the matching identities
// decrypts on download; age's STREAM format seals 64 KiB chunks
// independently, so a range request decrypts only the chunks it covers
// (age.DecryptReaderAt) and http.ServeContent answers it as for a plain
// file. Without the identities (the recommended set-up when the server
// should never be able to read what it recorded) the download is the
// encrypted file itself, named .mp4.age: its ranges are ranges of the
// ciphertext, which is what a resumed download needs.

const ageSuffix = ".age"

func encrypted(path string) bool { return strings.HasSuffix(path, ageSuffix) }

func (s *Server) downloadEncrypted(w http.ResponseWriter, r *http.Request, rec recordingRow, name string, f *os.File, st os.FileInfo) {
	if len(s.cfg.Identities) > 0 {
		plain, size, err := age.DecryptReaderAt(f, st.Size(), s.cfg.Identities...)
		if err == nil {
			w.Header().Set("Content-Type", "video/mp4")
			w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
			http.ServeContent(w, r, name, st.ModTime(), io.NewSectionReader(plain, 0, size))
			return
		}
		// A torn file (no final chunk: a crash) or another key: hand out
		// the encrypted file; `roomcast decrypt` reads torn files too.
		s.log.Warn().Err(err).Str("recording", rec.ID).Msg("cannot decrypt the recording for download; serving it encrypted")
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+ageSuffix+`"`)
	w.Header().Set("X-Roomcast-Encrypted", "age")
	http.ServeContent(w, r, name+ageSuffix, st.ModTime(), f)
}

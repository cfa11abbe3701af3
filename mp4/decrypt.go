package mp4

import (
	"errors"
	"fmt"
	"io"
	"os"

	"filippo.io/age"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/atrest"
)

// Decrypt turns an encrypted recording (finished, or torn by a crash) into a
// regular MP4 at dst: it decrypts up to the last sealed chunk, then
// finalises as Recover does (a partial fragment at the end is dropped, the
// index goes in front). torn reports that src ended early; what came before
// is in dst. dst is created exclusively unless overwrite; on error nothing
// is left at dst. Errors: atrest.ErrWrongKey, atrest.ErrNotEncrypted,
// ErrCreate (dst), ErrWrite, ErrFinalise (dst is then kept: it plays).
func Decrypt(src, dst string, ids []age.Identity, overwrite bool, log zerolog.Logger) (torn bool, err error) {
	in, err := os.Open(src)
	if err != nil {
		return false, fmt.Errorf("%w: %w", atrest.ErrNotEncrypted, err)
	}
	defer in.Close()
	plain, err := atrest.Decrypt(in, ids)
	if err != nil {
		return false, err
	}
	if err := checkDestination(dst, overwrite); err != nil {
		return false, err
	}
	flag := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if overwrite {
		flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	out, err := os.OpenFile(dst, flag, 0o600)
	if err != nil {
		return false, fmt.Errorf("%w: %s: %w", ErrCreate, dst, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(dst)
		}
	}()
	n, err := io.Copy(out, plain)
	switch {
	case errors.Is(err, atrest.ErrTorn):
		torn = true
		log.Warn().Int64("bytes", n).Msg("the encrypted recording ends early (crash or damage); recovering what came before")
	case err != nil:
		_ = out.Close()
		return false, classify(err)
	}
	if err := errors.Join(out.Sync(), out.Close()); err != nil {
		return torn, classify(err)
	}
	if n == 0 {
		return torn, fmt.Errorf("%w: %s holds no complete chunk of recording", atrest.ErrTorn, src)
	}
	ok = true
	if err := Recover(dst, log); err != nil {
		return torn, err
	}
	return torn, nil
}

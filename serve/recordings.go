package serve

import (
	"errors"
	"image"
	"image/jpeg"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/av"
	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/mp4"
)

// RecordingView is a recording as the API and the page show it.
type RecordingView struct {
	ID          string  `json:"id"`
	BroadcastID string  `json:"broadcast_id"`
	State       string  `json:"state"` // recording, ready, interrupted
	Created     string  `json:"created"`
	Duration    float64 `json:"duration_seconds"`
	Size        int64   `json:"size"`
	Speakers    string  `json:"speakers"`
	// SpeakerNames are what the tiles showed of the names of everyone on
	// the picture (the broadcast's label style: names, initials, none).
	SpeakerNames []string `json:"speaker_names"`
	Note         string   `json:"note,omitempty"`
	Poster       string   `json:"poster_url,omitempty"`
	DownloadURL  string   `json:"download_url,omitempty"`
	// Encrypted recordings are age files at rest; Decrypted says whether
	// the download is the decrypted MP4 (the server holds the key) or the
	// encrypted file (decrypt with `roomcast decrypt` or `age -d`).
	Encrypted bool   `json:"encrypted,omitempty"`
	Decrypted bool   `json:"download_decrypted,omitempty"`
	Expires   string `json:"download_expires,omitempty"`
}

// recoverAtStart handles what a crash left: broadcasts marked live are
// interrupted; their recordings, torn mid-fragment, are cut to the last
// whole fragment and finalised (mp4.Recover), then marked interrupted.
func (s *Server) recoverAtStart() {
	rows, err := s.st.broadcasts(0, "state IN ('live','starting','stopping')")
	if err == nil {
		for _, b := range rows {
			_ = s.st.updateBroadcast(b.ID, "interrupted", "the server stopped unexpectedly during the broadcast", b.Started, s.now(), b.Stats)
		}
	}
	recs, err := s.st.recordings(0, "state='recording'")
	if err != nil {
		return
	}
	for _, r := range recs {
		log := s.cfg.Log.With().Str("component", "serve").Str("recording", r.ID).Logger()
		if _, err := os.Stat(r.Path); err != nil {
			log.Warn().Msg("a recording of a crashed run left no file; forgetting it")
			_ = s.st.deleteRecording(r.ID)
			continue
		}
		r.State, r.Note = "interrupted", "recovered after the server stopped unexpectedly"
		if encrypted(r.Path) {
			// Crash-safe as it is; only a key holder can cut it.
			r.Note = "left by a crash; encrypted: `roomcast decrypt` reads it up to its last sealed chunk"
		} else if err := mp4.Recover(r.Path, log); err != nil {
			log.Error().Err(err).Msg("recovering a torn recording")
			r.Note = "recovered after a crash, partly: " + err.Error()
		}
		_ = os.Chmod(r.Path, 0o600)
		s.describe(&r, log)
		_ = s.st.updateRecording(r)
		log.Info().Dur("duration", r.Duration).Int64("bytes", r.Size).Msg("torn recording recovered and marked interrupted")
		_ = s.audit.Append("system", "recording.recover", r.ID, r.Note)
	}
}

// describe fills size, duration and the poster frame from the file.
func (s *Server) describe(r *recordingRow, log zerolog.Logger) {
	if st, err := os.Stat(r.Path); err == nil {
		r.Size = st.Size()
	}
	if encrypted(r.Path) {
		// A poster would be a plaintext picture on disk: none.
		return
	}
	posterPath := strings.TrimSuffix(r.Path, ".mp4") + ".jpg"
	d, err := poster(r.Path, posterPath, log)
	if err != nil {
		log.Warn().Err(err).Msg("no poster frame")
	} else {
		r.Poster = posterPath
	}
	r.Duration = d
}

// poster decodes the file's picture at about 1 s (or its last, if
// shorter), writes it as a JPEG, and returns the file's duration.
func poster(path, out string, log zerolog.Logger) (time.Duration, error) {
	rd, err := av.OpenFile(path, log)
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	dur := rd.Info().Duration
	var pick *media.Image
	for i := 0; i < 400; i++ {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return dur, err
		}
		if it.Video != nil {
			pick = it.Video
			if it.PTS >= time.Second {
				break
			}
		}
	}
	if pick == nil {
		return dur, errors.New("no picture in the recording")
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return dur, err
	}
	// A poster is a thumbnail: scale it down (swscale) before the JPEG.
	if pick.Width > posterWidth {
		h := pick.Height * posterWidth / pick.Width &^ 1
		small := media.NewImage(posterWidth, h)
		sc := av.NewScaler()
		serr := sc.Scale(small, pick)
		sc.Close()
		if serr == nil {
			pick = small
		}
	}
	err = jpeg.Encode(f, toYCbCr(pick), &jpeg.Options{Quality: 80})
	return dur, errors.Join(err, f.Close())
}

// posterWidth is the poster's width in pixels.
const posterWidth = 480

// toYCbCr wraps a 4:2:0 picture for image/jpeg (no copy of the planes).
func toYCbCr(m *media.Image) *image.YCbCr {
	return &image.YCbCr{Y: m.Y, Cb: m.U, Cr: m.V, YStride: m.StrideY, CStride: m.StrideC,
		SubsampleRatio: image.YCbCrSubsampleRatio420, Rect: image.Rect(0, 0, m.Width, m.Height)}
}

func (s *Server) recordingView(r recordingRow) RecordingView {
	v := RecordingView{ID: r.ID, BroadcastID: r.BroadcastID, State: r.State, Created: rfc(r.Created),
		Duration: r.Duration.Seconds(), Size: r.Size, Speakers: r.Speakers, Note: r.Note, SpeakerNames: []string{},
		Encrypted: encrypted(r.Path)}
	v.Decrypted = v.Encrypted && len(s.cfg.Identities) > 0
	if r.SpeakerNames != "" {
		v.SpeakerNames = strings.Split(r.SpeakerNames, "\n")
	}
	if r.Poster != "" {
		v.Poster = s.cfg.BaseURL + "/recordings/" + r.ID + "/poster.jpg"
	}
	if r.State != "recording" {
		exp := s.now().Add(s.cfg.LinkTTL)
		v.DownloadURL = s.cfg.BaseURL + "/download/" + r.ID + "?" + s.keys.signLink(r.ID, exp)
		v.Expires = rfc(exp)
	}
	return v
}

func (s *Server) listRecordings(u user) ([]RecordingView, error) {
	uid := u.ID
	if u.Admin {
		uid = 0
	}
	rows, err := s.st.recordings(uid, "")
	if err != nil {
		return nil, err
	}
	out := make([]RecordingView, 0, len(rows))
	for _, r := range rows {
		out = append(out, s.recordingView(r))
	}
	return out, nil
}

var errForbidden = errors.New("forbidden")

// errBusy: the recording is still being written.
var errBusy = errors.New("the recording is still being written")

// DeleteRecording removes a recording's files and row.
func (s *Server) DeleteRecording(u user, id string) error {
	r, err := s.st.recording(id)
	if err != nil {
		return err
	}
	if r.UserID != u.ID && !u.Admin {
		return errForbidden
	}
	if r.State == "recording" {
		return errBusy
	}
	s.removeRecording(r)
	// The watch page's replay is the same broadcast: it goes with it.
	s.removeHLS(r.BroadcastID)
	_ = s.audit.Append(u.Name, "recording.delete", id, "")
	return nil
}

func (s *Server) removeRecording(r recordingRow) {
	_ = os.Remove(r.Path)
	if r.Poster != "" {
		_ = os.Remove(r.Poster)
	}
	_ = s.st.deleteRecording(r.ID)
}

// RunRetention deletes finished recordings older than the retention age
// (by the injected clock) and logs each deletion. It returns how many.
func (s *Server) RunRetention() int {
	if s.cfg.Retention < 0 {
		return 0
	}
	cut := s.now().Add(-s.cfg.Retention)
	rows, err := s.st.recordings(0, "state!='recording' AND created<?", ms(cut))
	if err != nil {
		return 0
	}
	for _, r := range rows {
		s.removeRecording(r)
		s.removeHLS(r.BroadcastID)
		s.log.Info().Str("recording", r.ID).Str("created", rfc(r.Created)).Dur("retention", s.cfg.Retention).Msg("recording deleted by retention")
		_ = s.audit.Append("retention", "recording.delete", r.ID, "older than "+s.cfg.Retention.String())
	}
	// Replays of broadcasts without a recording age the same way.
	old, err := s.st.broadcasts(0, "hls=1 AND ended>0 AND ended<?", ms(cut))
	if err == nil {
		for _, b := range old {
			if _, serr := os.Stat(s.hlsDir(b.ID)); serr == nil {
				s.removeHLS(b.ID)
				s.log.Info().Str("broadcast", b.ID).Dur("retention", s.cfg.Retention).Msg("HLS replay deleted by retention")
				_ = s.audit.Append("retention", "replay.delete", b.ID, "older than "+s.cfg.Retention.String())
			}
		}
	}
	return len(rows)
}

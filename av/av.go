// Package av is roomcast's only door to FFmpeg (through go-astiav) apart
// from the MP4 muxer: it demuxes and decodes recorded files, decodes live
// WebRTC packets, scales pictures with swscale, resamples sound with
// swresample and encodes H.264 (libx264) and AAC.
//
// Every FFmpeg object is allocated and freed inside this package. Values
// handed to callers (media.Image, media.Audio, media.Packet, byte slices) are
// Go memory and stay valid after Close. Types are not safe for concurrent use
// unless their documentation says otherwise.
package av

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/asticode/go-astiav"
	"github.com/rs/zerolog"
)

// Sentinel errors; wrapped with %w together with the path or codec and a
// short reason.
var (
	// ErrNotFound means the input file does not exist.
	ErrNotFound = errors.New("file not found")
	// ErrCorrupt means the input is not media we can parse: not a media
	// file, damaged beyond use, or (for packet decoders) an undecodable
	// packet, after which the caller should ask the sender for a keyframe.
	ErrCorrupt = errors.New("corrupt media")
	// ErrUnsupported means the input is valid but holds nothing we can
	// decode (an unknown codec, no audio or video stream), or a codec name
	// or setting is not available in this FFmpeg build.
	ErrUnsupported = errors.New("unsupported media")
)

// RouteFFmpegLogs sends FFmpeg's own messages at level or more severe to log
// (field component=ffmpeg) instead of stderr; zerolog.Disabled silences
// FFmpeg. FFmpeg's log callback is process-global, so main should call this
// once; library code must not. FFmpeg's per-packet "errors" are logged as
// warnings: this package decides what is fatal.
func RouteFFmpegLogs(log zerolog.Logger, level zerolog.Level) {
	l := log.With().Str("component", "ffmpeg").Logger()
	var lv astiav.LogLevel
	switch {
	case level >= zerolog.Disabled || level == zerolog.NoLevel:
		lv = astiav.LogLevelQuiet
	case level >= zerolog.ErrorLevel:
		lv = astiav.LogLevelError
	case level == zerolog.WarnLevel:
		lv = astiav.LogLevelWarning
	case level == zerolog.InfoLevel:
		lv = astiav.LogLevelInfo
	case level == zerolog.DebugLevel:
		lv = astiav.LogLevelVerbose
	default:
		lv = astiav.LogLevelDebug
	}
	astiav.SetLogLevel(lv)
	if lv == astiav.LogLevelQuiet {
		astiav.ResetLogCallback()
		return
	}
	maxLv := lv
	var mu sync.Mutex
	var line strings.Builder
	astiav.SetLogCallback(func(c astiav.Classer, lv astiav.LogLevel, _, msg string) {
		if lv > maxLv {
			return
		}
		// FFmpeg may emit one line in several calls; only complete lines are logged.
		mu.Lock()
		line.WriteString(msg)
		if !strings.HasSuffix(msg, "\n") {
			mu.Unlock()
			return
		}
		s := strings.TrimSpace(line.String())
		line.Reset()
		mu.Unlock()
		if s == "" {
			return
		}
		ev := l.Debug()
		switch {
		case lv <= astiav.LogLevelWarning:
			ev = l.Warn()
		case lv <= astiav.LogLevelInfo:
			ev = l.Info()
		}
		if c != nil {
			if cl := c.Class(); cl != nil {
				ev = ev.Str("class", cl.Name())
			}
		}
		ev.Msg(s)
	})
}

// avErr wraps an FFmpeg error with a sentinel and context.
func avErr(sentinel error, what string, err error) error {
	if err == nil {
		return fmt.Errorf("%w: %s", sentinel, what)
	}
	return fmt.Errorf("%w: %s: %v", sentinel, what, err)
}

// leftover lists the options a codec did not consume: a typo or an option
// this FFmpeg build lacks, which we refuse rather than silently ignore.
func leftover(d *astiav.Dictionary) []string {
	var out []string
	var e *astiav.DictionaryEntry
	for {
		if e = d.Get("", e, astiav.NewDictionaryFlags(astiav.DictionaryFlagIgnoreSuffix)); e == nil {
			return out
		}
		out = append(out, e.Key()+"="+e.Value())
	}
}

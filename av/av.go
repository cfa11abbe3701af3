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

	"github.com/asticode/go-astiav"
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

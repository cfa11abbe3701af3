// Package bbb reads BigBlueButton's raw recordings: the events.xml timeline
// that BBB's record-and-playback archive step writes next to the media files
// (/var/bigbluebutton/recording/raw/<internal-meeting-id>/), and turns it into
// a meeting timeline that a compositor can play: who was there under which
// name, each webcam and screen-share segment with its file, the audio files,
// the talking turns, the slide shown at each moment and the intervals during
// which recording was switched on.
//
// It is pure Go (encoding/xml), reads the file as a stream, ignores the many
// event types it does not need, and reports a truncated or malformed file
// with ErrInvalid.
package bbb

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// ErrInvalid marks an events.xml that cannot be read as a whole: truncated,
// not XML, or without the <recording> root. Callers map it to an input error.
var ErrInvalid = errors.New("bbb: invalid events.xml")

// ErrNothingRecorded: the meeting has no span with recording switched on
// (and no media to show).
var ErrNothingRecorded = errors.New("bbb: nothing was recorded")

// Limits against hostile or broken files: an event holds a few short fields.
const (
	maxFieldBytes = 64 << 10
	maxFields     = 64
)

// Event is one <event> of events.xml: its attributes and the text of its
// direct child elements (filename, userId, name, talking, …).
type Event struct {
	// Timestamp is the event's `timestamp` attribute: milliseconds on the
	// BBB server's clock. Only differences between events matter.
	Timestamp int64
	// Module and Name are the `module` and `eventname` attributes
	// (e.g. "bbb-webrtc-sfu", "StartWebRTCShareEvent").
	Module, Name string
	// Fields maps a child element's name to its text, trimmed.
	Fields map[string]string
}

// Field returns the text of the named child element, or "".
func (e *Event) Field(name string) string { return e.Fields[name] }

// Recording is a parsed events.xml.
type Recording struct {
	// MeetingID is the <recording meeting_id="…"> attribute: BBB's internal
	// meeting id, also the name of the media sub-folders.
	MeetingID string
	// Events in timestamp order (stable: file order for equal stamps).
	Events []Event
	// Skipped counts events without a usable timestamp.
	Skipped int
}

// Parse reads an events.xml stream.
func Parse(r io.Reader) (*Recording, error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	rec := &Recording{}
	root := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if !root {
			if se.Name.Local != "recording" {
				return nil, fmt.Errorf("%w: root element is <%s>, want <recording>", ErrInvalid, se.Name.Local)
			}
			root = true
			rec.MeetingID = attr(se, "meeting_id")
			continue
		}
		if se.Name.Local != "event" {
			// <metadata>, <meeting>, … : not needed.
			if err := d.Skip(); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
			}
			continue
		}
		ev, err := readEvent(d, se)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		ts, perr := strconv.ParseInt(strings.TrimSpace(attr(se, "timestamp")), 10, 64)
		if perr != nil || ts < 0 {
			rec.Skipped++
			continue
		}
		ev.Timestamp = ts
		rec.Events = append(rec.Events, ev)
	}
	if !root {
		return nil, fmt.Errorf("%w: no <recording> element", ErrInvalid)
	}
	// A well-formed document ends after the root closes; the decoder
	// already reported an unclosed root as unexpected EOF.
	sort.SliceStable(rec.Events, func(i, j int) bool { return rec.Events[i].Timestamp < rec.Events[j].Timestamp })
	return rec, nil
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// readEvent reads the children of an <event> up to its end element.
func readEvent(d *xml.Decoder, se xml.StartElement) (Event, error) {
	ev := Event{Module: attr(se, "module"), Name: attr(se, "eventname"), Fields: map[string]string{}}
	var (
		depth int
		field string
		text  strings.Builder
	)
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return ev, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				field = t.Name.Local
				text.Reset()
			}
		case xml.CharData:
			if depth == 1 && text.Len()+len(t) <= maxFieldBytes {
				text.Write(t)
			}
		case xml.EndElement:
			if depth == 0 {
				return ev, nil
			}
			if depth == 1 && len(ev.Fields) < maxFields {
				ev.Fields[field] = strings.TrimSpace(text.String())
			}
			depth--
		}
	}
}

package hls

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// playlist is a media playlist (RFC 8216 4.3) over fMP4 segments.
type playlist struct {
	target  int // EXT-X-TARGETDURATION, seconds
	initURI string
	segs    []segment // in order; the first one's seq is the media sequence
	ended   bool      // EXT-X-ENDLIST
	vod     bool      // EXT-X-PLAYLIST-TYPE:VOD (segs is the whole broadcast)
	pdt     bool      // write EXT-X-PROGRAM-DATE-TIME
}

// segment is one written media segment.
type segment struct {
	seq   int
	name  string
	start time.Duration // media time of its first video sample
	dur   time.Duration
	wall  time.Time // wall-clock time of start (EXT-X-PROGRAM-DATE-TIME)
	bytes int
}

// targetFor is the EXT-X-TARGETDURATION covering segments up to maxDur:
// every EXTINF rounded to the nearest integer must not exceed it (RFC 8216
// 4.3.3.1).
func targetFor(nominal, maxDur time.Duration) int {
	return max(int(math.Ceil(nominal.Seconds())), int(math.Round(maxDur.Seconds())), 1)
}

func (p *playlist) render() []byte {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", p.target)
	seq := 0
	if len(p.segs) > 0 {
		seq = p.segs[0].seq
	}
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", seq)
	if p.vod {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	}
	// Every segment starts with an IDR picture (RFC 8216 4.3.5.1).
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	fmt.Fprintf(&b, "#EXT-X-MAP:URI=%q\n", p.initURI)
	for _, s := range p.segs {
		if p.pdt && !s.wall.IsZero() {
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", s.wall.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		}
		b.WriteString("#EXTINF:")
		b.WriteString(strconv.FormatFloat(s.dur.Seconds(), 'f', 5, 64))
		b.WriteString(",\n")
		b.WriteString(s.name)
		b.WriteByte('\n')
	}
	if p.ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}

package rtmp_test

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/rtmp"
)

// How the CLI wires --stream values into a fan-out next to the recording.
func Example() {
	var (
		info      media.StreamInfo    // from the encoder, once it is open
		packets   <-chan media.Packet // the encoder loop's output
		keyframe  = func() {}         // asks the encoder for an IDR frame
		log       = zerolog.Nop()     // the CLI's logger
		streamArg = []string{
			"rtmps://peertube.example:1936/live/${PEERTUBE_KEY}",
			"rtmp://owncast.example/live/${file:/run/secrets/owncast}",
		}
	)
	var pubs []*rtmp.Publisher
	for _, s := range streamArg {
		dest, err := rtmp.ResolveURL(s, rtmp.KeyLookup{})
		if err != nil {
			fmt.Println(err) // names the variable or file, never the key
			return
		}
		preset, _ := rtmp.PresetByName("peertube") // feeds the encoder settings
		_ = preset
		pubs = append(pubs, &rtmp.Publisher{Dest: dest, Info: info, RequestKeyframe: keyframe, Logger: log})
	}
	out := rtmp.NewFanout(pubs...)
	if n, err := out.Start(context.Background()); n == 0 {
		fmt.Println("no destination accepted the stream:", err)
		return
	}
	for p := range packets {
		out.WritePacket(p) // never blocks; the MP4 writer gets p too
	}
	_ = out.Close()
}

// What `roomcast check-ingest URL` runs.
func ExampleCheckIngest() {
	var (
		info media.StreamInfo
		card rtmp.PacketSource // 10 s of test card and tone from the encoder
	)
	p := &rtmp.Publisher{URL: "rtmp://ingest.example/live/KEY", Info: info}
	rep, err := rtmp.CheckIngest(context.Background(), p, card, 10*time.Second)
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	fmt.Printf("accepted by %s, server chunk size %d, %.0f kb/s\n", rep.Destination, rep.ServerChunkSize, rep.Bitrate/1000)
}

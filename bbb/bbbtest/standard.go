package bbbtest

import "image/color"

// Colours of the standard meeting, as ffmpeg colour strings and RGB.
var (
	Alice  = [3]uint8{0xE0, 0x30, 0x30}
	Bob    = [3]uint8{0x30, 0xC0, 0x40}
	Carol  = [3]uint8{0x30, 0x50, 0xE0}
	Screen = [3]uint8{0xE0, 0xD0, 0x20}
	Page1  = color.RGBA{0x20, 0xD0, 0xD0, 0xff}
	Page2  = color.RGBA{0x80, 0x40, 0xA0, 0xff}
	Quad2  = color.RGBA{0xF0, 0x80, 0x20, 0xff} // page 2's top-left quarter
	Page3  = color.RGBA{0x80, 0x60, 0x20, 0xff}
)

func ff(c [3]uint8) string {
	return "0x" + string("0123456789ABCDEF"[c[0]>>4]) + string("0123456789ABCDEF"[c[0]&15]) +
		string("0123456789ABCDEF"[c[1]>>4]) + string("0123456789ABCDEF"[c[1]&15]) +
		string("0123456789ABCDEF"[c[2]>>4]) + string("0123456789ABCDEF"[c[2]&15])
}

// Tones of the talkers in the meeting audio.
const (
	AliceTone = 440.0
	BobTone   = 660.0
)

// Standard is a 24 s meeting that exercises what a webinar has:
//
//	0.2  the presentation is shared (page 1)
//	0.5  Alice joins and starts her camera (before recording: it is cut)
//	1.0  recording on            (output 0.0)
//	3.0  Bob joins; 4.0–9.0 Bob's first camera segment
//	5.0  page 2 (SVG only)  8.0 zoom to its top-left quarter
//	6.0  Carol joins; 7.0 her camera starts (blue with white flashes)
//	9.2, 10.2  Carol's flashes and beeps
//	11.0 recording off (pause)   (output 10.0)
//	14.0 recording on            (output 10.0)
//	15.0 page 3; Bob's second camera segment 15.0–20.0
//	16.0–19.0 screen share (yellow)
//	21.0 page 1 again
//	23.0 recording off           (output 19.0); 24.0 meeting ends
//
// Talking turns: Alice 1.5–4.5 (440 Hz), Bob 5.0–8.5 (660 Hz), Carol
// 9.0–10.8 (beeps), Alice 14.5–15.8, Bob 16.5–19.5, Alice 20.5–22.5. The
// audio is two files, one per recording segment: Opus then WAV.
func Standard(id string) *Meeting {
	if id == "" {
		id = "183f0bf3a0982a127bdb8161e0c44eb696b3e75c-1764500000000"
	}
	return &Meeting{
		ID:  id,
		End: 24,
		Users: []User{
			{ID: "w_alice1", Name: "Alice Martin", Role: "MODERATOR", Join: 0.4},
			{ID: "w_bob2", Name: "Bob Okafor", Join: 3.0},
			{ID: "w_carol3", Name: "Carol Chen", Join: 6.0},
		},
		Cams: []Cam{
			{User: "w_alice1", Start: 0.5, Stop: 23.5, Colour: ff(Alice)},
			{User: "w_bob2", Start: 4.0, Stop: 9.0, Colour: ff(Bob)},
			{User: "w_carol3", Start: 7.0, Stop: 23.5, Colour: ff(Carol), Flashes: []float64{9.2, 10.2, 21.2}},
			{User: "w_bob2", Start: 15.0, Stop: 20.0, Colour: ff(Bob)},
		},
		Screens:      []Share{{Start: 16, Stop: 19, Colour: ff(Screen)}},
		Presentation: "d2d9a672040fbde2a47a10bf6c37b6a4b5ae187f-1764500000100",
		Pages:        []Page{{Colour: Page1}, {Colour: Page2, Quad: &Quad2, SVGOnly: true}, {Colour: Page3}},
		Slides: []SlideEvent{
			{At: 0.2, Kind: "share"},
			{At: 5.0, Kind: "goto", Page: 1},
			{At: 8.0, Kind: "zoom", Zoom: [4]float64{0, 0, 50, 50}},
			{At: 15.0, Kind: "goto", Page: 2},
			{At: 21.0, Kind: "goto", Page: 0},
		},
		Talks: []Turn{
			{User: "w_alice1", Start: 1.5, Stop: 4.5, Tone: AliceTone},
			{User: "w_bob2", Start: 5.0, Stop: 8.5, Tone: BobTone},
			{User: "w_carol3", Start: 9.0, Stop: 10.8},
			{User: "w_alice1", Start: 14.5, Stop: 15.8, Tone: AliceTone},
			{User: "w_bob2", Start: 16.5, Stop: 19.5, Tone: BobTone},
			{User: "w_alice1", Start: 20.5, Stop: 22.5, Tone: AliceTone},
		},
		Beeps:        []float64{9.2, 10.2, 21.2},
		Record:       []float64{1, 11, 14, 23},
		AudioFormats: []string{"opus", "wav"},
		Unknown:      true,
		// 30 fps cameras: at 15 fps a picture is half an output frame
		// either side of two output instants, and the compositor's nearest
		// picture rule (ties to the later) shows it one output frame early;
		// the sync check measures roomcast's cut-and-place, not that rule.
		CamFPS: 30,
	}
}

// Webinar is a long meeting for benchmarks: three webcams on from the start
// to the end, talkers taking 20 s turns, recording on throughout, no slides.
func Webinar(minutes int) *Meeting {
	end := float64(minutes*60) + 2
	m := &Meeting{
		ID:  "bench0000000000000000000000000000000000000-1764500000000",
		End: end,
		Users: []User{
			{ID: "w_alice1", Name: "Alice Martin", Role: "MODERATOR", Join: 0.1},
			{ID: "w_bob2", Name: "Bob Okafor", Join: 0.2},
			{ID: "w_carol3", Name: "Carol Chen", Join: 0.3},
		},
		Cams: []Cam{
			{User: "w_alice1", Start: 0.5, Stop: end - 0.5, Colour: ff(Alice)},
			{User: "w_bob2", Start: 0.6, Stop: end - 0.5, Colour: ff(Bob)},
			{User: "w_carol3", Start: 0.7, Stop: end - 0.5, Colour: ff(Carol)},
		},
		Record:    []float64{1, end - 1},
		AudioExpr: "0.3*sin(2*PI*(440+110*floor(mod(T/20\\,3)))*T)",
		CamSize:   "640x360",
		CamFPS:    30,
	}
	users := []string{"w_alice1", "w_bob2", "w_carol3"}
	for t, i := 1.0, 0; t+20 < end-1; t, i = t+20, i+1 {
		m.Talks = append(m.Talks, Turn{User: users[i%3], Start: t, Stop: t + 19.5})
	}
	return m
}

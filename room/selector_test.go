package room

import "testing"

func TestTrackSelector(t *testing.T) {
	cam := &Track{SID: "TR_c", Kind: KindVideo, Source: SourceCamera}
	scr := &Track{SID: "TR_s", Kind: KindVideo, Source: SourceScreenShare}
	mic := &Track{SID: "TR_m", Kind: KindAudio, Source: SourceMicrophone}
	cases := []struct {
		name string
		sel  TrackSelector
		want [3]bool // cam, scr, mic
	}{
		{"zero takes all", TrackSelector{}, [3]bool{true, true, true}},
		{"audio only", TrackSelector{NoVideo: true}, [3]bool{false, false, true}},
		{"video only", TrackSelector{NoAudio: true}, [3]bool{true, true, false}},
		{"screen share", TrackSelector{Sources: []Source{SourceScreenShare, SourceMicrophone}}, [3]bool{false, true, true}},
		{"by SID", TrackSelector{SIDs: []string{"TR_c", "TR_m"}}, [3]bool{true, false, true}},
		{"SID and kind", TrackSelector{SIDs: []string{"TR_c", "TR_m"}, NoVideo: true}, [3]bool{false, false, true}},
	}
	for _, c := range cases {
		for i, tr := range []*Track{cam, scr, mic} {
			if got := c.sel.Picks(tr); got != c.want[i] {
				t.Errorf("%s: Picks(%s) = %v, want %v", c.name, tr.SID, got, c.want[i])
			}
		}
	}
}

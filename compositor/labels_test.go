package compositor

import (
	"reflect"
	"testing"

	"github.com/rs/zerolog"
)

// TestLabelsFollowStyle: the names a host's page may show are what the
// tiles show, under each label style; screen shares, hidden inputs and
// people who left are not listed, a name is listed once.
func TestLabelsFollowStyle(t *testing.T) {
	for _, tc := range []struct {
		style LabelStyle
		want  []string
	}{
		{LabelName, []string{"Ada Lovelace", "Grace Hopper"}},
		{LabelInitials, []string{"AL", "GH"}},
		{LabelNone, []string{}},
	} {
		t.Run(tc.style.String(), func(t *testing.T) {
			c, err := New(Config{Width: 320, Height: 180, FPS: 30, Labels: tc.style, Scaler: nearest{}, Log: zerolog.Nop()}, &capture{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.AddInput("a", "Ada Lovelace", InputOptions{})
			c.AddInput("a#screen", "Ada Lovelace", InputOptions{Screen: true})
			c.AddInput("mix", "Room audio", InputOptions{Hidden: true})
			c.AddInput("g", "Grace Hopper", InputOptions{})
			c.AddInput("g2", "Grace Hopper", InputOptions{}) // second device
			gone := c.AddInput("t", "Alan Turing", InputOptions{})
			gone.Remove()
			if got := c.Labels(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Labels() = %q, want %q", got, tc.want)
			}
		})
	}
}

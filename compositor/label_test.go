package compositor

import "testing"

func TestInitials(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Ada Lovelace", "AL"},
		{"Ada King Lovelace", "AL"},
		{"ada", "A"},
		{"jean-luc picard", "JP"},
		{"ada.lovelace@example.org", "AL"},
		{"  Émile   Zola ", "ÉZ"},
		{"Ωmega", "Ω"},
		{"李 小龍", "李小"},
		{"(guest) 42", "G4"},
		{"", ""},
		{"--- ...", ""},
	} {
		if got := Initials(c.in); got != c.want {
			t.Errorf("Initials(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseLabelStyle(t *testing.T) {
	for _, s := range []LabelStyle{LabelName, LabelInitials, LabelNone} {
		got, err := ParseLabelStyle(s.String())
		if err != nil || got != s {
			t.Errorf("round trip %v: %v, %v", s, got, err)
		}
	}
	if _, err := ParseLabelStyle("full"); err == nil {
		t.Error("accepted a bad style")
	}
}

func FuzzInitials(f *testing.F) {
	for _, s := range []string{"Ada Lovelace", "a@b", "\xff\xfe", "- - -"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n := len([]rune(Initials(s))); n > 2 {
			t.Fatalf("Initials(%q) has %d runes", s, n)
		}
	})
}

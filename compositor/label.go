package compositor

import (
	"fmt"
	"strings"
	"unicode"
)

// LabelStyle says what a tile's label shows of a participant's name: the
// least that serves the viewer is the GDPR's data minimisation (Art. 5(1)(c)).
type LabelStyle int

const (
	// LabelName shows the display name (the default).
	LabelName LabelStyle = iota
	// LabelInitials shows the initials only ("Ada Lovelace" → "AL").
	LabelInitials
	// LabelNone shows nothing: no label on the tile, no name on the
	// placeholder.
	LabelNone
)

// ParseLabelStyle reads "name", "initials" or "none".
func ParseLabelStyle(s string) (LabelStyle, error) {
	switch s {
	case "name", "":
		return LabelName, nil
	case "initials":
		return LabelInitials, nil
	case "none":
		return LabelNone, nil
	}
	return 0, fmt.Errorf("label style %q (want name, initials or none)", s)
}

// String is the flag value.
func (s LabelStyle) String() string {
	switch s {
	case LabelInitials:
		return "initials"
	case LabelNone:
		return "none"
	}
	return "name"
}

// label is what the tile shows for name under style s.
func (s LabelStyle) label(name string) string {
	switch s {
	case LabelNone:
		return ""
	case LabelInitials:
		return Initials(name)
	}
	return name
}

// Initials is the upper-case first letter of the first and of the last
// word of name ("Ada King Lovelace" → "AL", "ada" → "A"); an e-mail address
// counts by its local part. Words are split at spaces, dots, hyphens and
// underscores; words without a letter or digit are skipped.
func Initials(name string) string {
	if at := strings.IndexByte(name, '@'); at > 0 {
		name = name[:at]
	}
	var first, last rune
	words := 0
	for _, w := range strings.FieldsFunc(name, func(r rune) bool {
		return unicode.IsSpace(r) || r == '.' || r == '-' || r == '_'
	}) {
		for _, r := range w {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				if words == 0 {
					first = r
				}
				last = r
				words++
				break
			}
		}
	}
	switch words {
	case 0:
		return ""
	case 1:
		return string(unicode.ToUpper(first))
	}
	return string([]rune{unicode.ToUpper(first), unicode.ToUpper(last)})
}

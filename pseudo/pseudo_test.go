package pseudo

import (
	"strings"
	"testing"
)

func TestNamer(t *testing.T) {
	a, b := New(), New()
	if a.ID("alice") != a.ID("alice") {
		t.Error("not stable within a session")
	}
	if a.ID("alice") == a.ID("bob") {
		t.Error("two identities share an id")
	}
	if a.ID("alice") == b.ID("alice") {
		t.Error("the same id in two sessions: linkable")
	}
	if id := a.ID("alice@example.org"); !strings.HasPrefix(id, "p-") || len(id) != 10 || strings.Contains(id, "alice") {
		t.Errorf("id %q", id)
	}
	var n *Namer
	if n.ID("x") != "p-unknown" {
		t.Error("nil namer")
	}
}

package card

import (
	"reflect"
	"testing"
)

func TestProfiles(t *testing.T) {
	ps := Profiles()
	if len(ps) < 20 {
		t.Fatalf("%d profiles, want at least 20", len(ps))
	}
	seen := map[string]bool{}
	for i, p := range ps {
		if p.Name == "" || p.Note == "" || seen[p.Name] {
			t.Errorf("profile %d %q: empty name or note, or duplicate", i, p.Name)
		}
		seen[p.Name] = true
		if _, ok := p.Kind.flavour(); !ok {
			t.Errorf("%s: unknown kind %q", p.Name, p.Kind)
		}
		q := p.clone()
		if err := q.normalize(); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
		// Each variant differs from every other profile in some knob.
		for _, o := range ps[:i] {
			a, b := p, o
			a.Name, a.Note, b.Name, b.Note = "", "", "", ""
			if reflect.DeepEqual(a, b) {
				t.Errorf("%s and %s differ only in name", p.Name, o.Name)
			}
		}
	}
	// Profiles returns copies.
	ps[0].Techs[0] = 99
	if p, _ := LookupProfile(ps[0].Name); p.Techs[0] == 99 {
		t.Error("Profiles leaks the table")
	}
}

func TestProfileString(t *testing.T) {
	tests := map[string]string{
		"mynumber":      "mynumber (mynumber): B, FSC 256, FWI 10 (309.3ms), CID, sign 300ms",
		"android-fsc32": "android-fsc32 (android): A, FSC 32, FWI 8 (77.3ms), CID, random ID, sign 300ms",
		"android-dual":  "android-dual (android): A+B, FSC 256, FWI 8 (77.3ms), CID, random ID, sign 300ms",
		"android-fwi4":  "android-fwi4 (android): A, FSC 256, FWI 4 (4.8ms), CID, random ID, S(WTX) at 0.5 FWT, sign 300ms",
	}
	for name, want := range tests {
		p, _ := LookupProfile(name)
		if got := p.String(); got != want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

func TestEveryProfileActivates(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			tok, err := NewProfile(p.Name, Options{})
			if err != nil {
				t.Fatal(err)
			}
			pcd, _ := activate(t, tok)
			want := SWOK
			if p.Kind == KindNonJPKI || p.Kind == KindTypeA {
				want = SWNotFound
			}
			if _, sw := transceive(t, pcd, hx(selJPKI)); sw != want {
				t.Errorf("SELECT JPKI AP: %v, want %v", sw, want)
			}
		})
	}
}

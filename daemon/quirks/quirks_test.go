package quirks

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"kazasu/drivers/nfc"
)

const sample = `{
  "version": 1,
  "profiles": [
    {"name": "any-B", "match": {"tech": "B"}, "read_chunk": 251},
    {"name": "mynumber-A1", "match": {"tech": "B", "features": "000005E0B381A1"}, "read_chunk": 256, "sign_timeout": "2s"},
    {"name": "gpse-phone-x", "match": {"tech": "A", "features": "0578", "token": "JPKIAPGPSETOKEN"},
     "max_command_apdu": 261, "max_response_apdu": 258, "extended_apdu": false, "isodep_mode": "host", "poll_order": ["A", "B"]},
    {"name": "A-0578", "match": {"tech": "A", "features": "0578"}, "apdu_timeout": "800ms"}
  ]
}`

func TestLoadAndLookup(t *testing.T) {
	s, err := Load(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	card := nfc.Target{Tech: nfc.TechB, ATQB: []byte{0x50, 1, 2, 3, 4, 0x00, 0x00, 0x05, 0xE0, 0xB3, 0x81, 0xA1}}
	if got := Features(card); got != "000005E0B381A1" {
		t.Fatalf("features %q", got)
	}
	phone := nfc.Target{Tech: nfc.TechA, ID: []byte{8, 1, 2, 3}, ATS: []byte{0x05, 0x78, 0x80, 0x70, 0x02}}
	other := nfc.Target{Tech: nfc.TechB, ATQB: []byte{0x50, 1, 2, 3, 4, 9, 9, 9, 9, 0, 0x71, 0x85}}
	cases := []struct {
		t     nfc.Target
		token string
		want  string
	}{
		{card, "JPKIAPICCTOKEN2", "mynumber-A1"},
		{other, "", "any-B"},
		{phone, "", "A-0578"},
		{phone, "JPKIAPGPSETOKEN", "gpse-phone-x"},
		{nfc.Target{Tech: nfc.TechA, ATS: []byte{0x02, 0x00}}, "", ""},
	}
	for _, c := range cases {
		p := s.Lookup(c.t, c.token)
		got := ""
		if p != nil {
			got = p.Name
		}
		if got != c.want {
			t.Errorf("Lookup(%s, %q) = %q, want %q", Features(c.t), c.token, got, c.want)
		}
	}
	p := s.Lookup(phone, "JPKIAPGPSETOKEN")
	if p.Mode() != nfc.ISODepHost || len(p.PollOrderTechs()) != 2 || p.PollOrderTechs()[0] != nfc.TechA || *p.ExtendedAPDU {
		t.Fatalf("profile fields: %+v", p)
	}
	if time.Duration(s.Lookup(card, "").SignTimeout) != 2*time.Second {
		t.Fatal("sign timeout not decoded")
	}
	// Round trip.
	var buf bytes.Buffer
	if err := s.Write(&buf); err != nil {
		t.Fatal(err)
	}
	s2, err := Load(&buf)
	if err != nil {
		t.Fatalf("reload: %v\n%s", err, buf.String())
	}
	if len(s2.Profiles) != 4 || s2.Profiles[0].Name != "A-0578" {
		t.Fatalf("round trip: %+v", s2.Profiles)
	}
}

func TestLoadRejects(t *testing.T) {
	cases := map[string]string{
		"unknown field":  `{"version":1,"profiles":[{"name":"x","match":{},"bogus":1}]}`,
		"version":        `{"version":2,"profiles":[]}`,
		"trailing":       `{"version":1,"profiles":[]} {}`,
		"tech":           `{"version":1,"profiles":[{"name":"x","match":{"tech":"C"}}]}`,
		"features":       `{"version":1,"profiles":[{"name":"x","match":{"features":"zz"}}]}`,
		"lower hex":      `{"version":1,"profiles":[{"name":"x","match":{"features":"ab"}}]}`,
		"mode":           `{"version":1,"profiles":[{"name":"x","match":{},"isodep_mode":"fast"}]}`,
		"poll":           `{"version":1,"profiles":[{"name":"x","match":{},"poll_order":["F"]}]}`,
		"duplicate":      `{"version":1,"profiles":[{"name":"x","match":{}},{"name":"x","match":{}}]}`,
		"no name":        `{"version":1,"profiles":[{"match":{}}]}`,
		"apdu too small": `{"version":1,"profiles":[{"name":"x","match":{},"max_command_apdu":3}]}`,
		"duration":       `{"version":1,"profiles":[{"name":"x","match":{},"apdu_timeout":"forever"}]}`,
		"long duration":  `{"version":1,"profiles":[{"name":"x","match":{},"apdu_timeout":"2h"}]}`,
		"chunk":          `{"version":1,"profiles":[{"name":"x","match":{},"read_chunk":70000}]}`,
	}
	for name, in := range cases {
		if _, err := Load(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte(`{"version":1,"profiles":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Load(bytes.NewReader(b))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := s.Write(&buf); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(&buf); err != nil {
			t.Fatalf("a loaded set does not reload: %v", err)
		}
		s.Lookup(nfc.Target{Tech: nfc.TechA, ATS: b}, "")
	})
}

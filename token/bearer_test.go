package token

import (
	"strings"
	"testing"
)

func TestParseBearer(t *testing.T) {
	const jwt = "aGVhZA.Ym9keQ.c2ln"
	for _, tc := range []struct {
		in, want, reason string
	}{
		{"Bearer " + jwt, jwt, ""},
		{"bearer " + jwt, jwt, ""},
		{"BEARER " + jwt, jwt, ""},
		{"  Bearer   " + jwt + "  ", jwt, ""},
		{"", "", ReasonMissing},
		{"   ", "", ReasonMissing},
		{"Basic dXNlcjpwYXNz", "", ReasonMissing},
		{jwt, "", ReasonMissing},
		{"Bearer", "", ReasonMalformed},
		{"Bearer ", "", ReasonMalformed},
		{"Bearer a b.c.d", "", ReasonMalformed},
		{"Bearer a.b", "", ReasonMalformed},
		{"Bearer a.b.c.d", "", ReasonMalformed},
		{"Bearer a..c", "", ReasonMalformed},
		{"Bearer .b.c", "", ReasonMalformed},
		{"Bearer a.b.", "", ReasonMalformed},
		{"Bearer a.b=.c", "", ReasonMalformed},
		{"Bearer a.b\x00.c", "", ReasonMalformed},
		{"Bearer " + strings.Repeat("a", MaxTokenBytes) + ".b.c", "", ReasonMalformed},
	} {
		got, err := ParseBearer(tc.in)
		if tc.reason == "" {
			if err != nil || got != tc.want {
				t.Errorf("ParseBearer(%.40q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseBearer(%.40q) = %q, want reason %q", tc.in, got, tc.reason)
			continue
		}
		if r := reasonOf(t, err); r != tc.reason {
			t.Errorf("ParseBearer(%.40q) reason %q, want %q", tc.in, r, tc.reason)
		}
	}
}

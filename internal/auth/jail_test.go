package auth

import (
	"strings"
	"testing"
)

func TestJailTokenOK(t *testing.T) {
	key := "first-token\nsecond token\n\ncrlf\r\nlast-no-newline"
	tests := []struct {
		tok  string
		want bool
	}{
		{"first-token", true},
		{"second token", true},
		{"last-no-newline", true},
		{"crlf\r", true},
		{"crlf", false},
		{"first", false},         // prefix of a line
		{"token", false},         // substring
		{"first-token\n", false}, // the newline is not part of the token
		{"", false},              // the empty line does not admit an empty token
		{"second", false},
	}
	for _, tt := range tests {
		got, err := JailTokenOK(strings.NewReader(key), tt.tok)
		if err != nil || got != tt.want {
			t.Errorf("JailTokenOK(%q) = %v, %v; want %v", tt.tok, got, err, tt.want)
		}
	}
	if ok, _ := JailTokenOK(strings.NewReader(""), "x"); ok {
		t.Error("empty file admitted a token")
	}
}

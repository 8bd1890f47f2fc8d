package tfproto

import "testing"

func TestFailedLine(t *testing.T) {
	tests := []struct {
		code Code
		want string
	}{
		{CodeAccessDenied, "FAILED 1 : Access denied to location."},
		{CodeIncompatibleProto, "FAILED 2 : Incompatible protocol."},
		{CodeInvalidHash, "FAILED 3 : Invalid hash string."},
		{CodeMissingParam, "FAILED 16 : Missing parameter from command."},
		{CodeBadRSA, "FAILED 25 : Bad public rsa encryption key."},
		{CodeTLB, "FAILED 52 : Failed to retrieve TLB tuple."},
		{CodeFAIKey, "FAILED 69 : FAI key is invalid."},
	}
	for _, tt := range tests {
		if got := tt.code.Line(); got != tt.want {
			t.Errorf("%d: got %q want %q", tt.code, got, tt.want)
		}
	}
	if len(CodeBadRSA.Line()) != 42 {
		t.Errorf("FAILED 25 line is %d bytes, WIRE.md §2 says 42", len(CodeBadRSA.Line()))
	}
	for c := Code(1); c <= 69; c++ {
		if c.Text() == "Unknown error." {
			t.Errorf("code %d has no text", c)
		}
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in   string
		kind Kind
		code Code
		text string
	}{
		{"OK", KindOK, 0, ""},
		{"OK 1795319348.34575", KindOK, 0, "1795319348.34575"},
		{"CONT", KindCont, 0, ""},
		{"CONT D: a/\n", KindCont, 0, "D: a/\n"},
		{"UNKNOWN", KindUnknown, 0, ""},
		{"FAILED 16 : Missing parameter from command.", KindFailed, 16, "Missing parameter from command."},
		{"FAILED 2: Incompatible protocol.", KindFailed, 2, "Incompatible protocol."},
		{"FAILED ", KindFailed, 0, ""},
		{"FAILED x", KindFailed, 0, "x"},
		{"hello", KindOther, 0, "hello"},
		{"", KindOther, 0, ""},
	}
	for _, tt := range tests {
		st := ParseStatus([]byte(tt.in))
		if st.Kind != tt.kind || st.Code != tt.code || st.Text != tt.text {
			t.Errorf("%q: got %v %d %q", tt.in, st.Kind, st.Code, st.Text)
		}
	}
	if err := ParseStatus([]byte("FAILED 9 : File does not exist.")).Err(); err == nil || err.Error() != "FAILED 9 : File does not exist." {
		t.Errorf("Err() = %v", err)
	}
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"OK", "FAILED 1 : x", "FAILED ", "CONT abc", "UNKNOWN", "FAILED -5: y"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st := ParseStatus(b)
		if st.Kind == KindFailed {
			_ = st.Err().Error()
		}
	})
}

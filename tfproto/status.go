package tfproto

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Code is a TFProtocol failure code, the N of "FAILED N : text".
type Code int

// The failure codes of TFProtocol 2.4.1 (1–52) and the later ones the reference
// server defines (53–69), WIRE.md §4.2. Names follow the spec's texts.
const (
	CodeAccessDenied      Code = 1
	CodeIncompatibleProto Code = 2
	CodeInvalidHash       Code = 3
	CodeDirExists         Code = 4
	CodeNotifyAdd         Code = 5
	CodeNotifyEmpty       Code = 6
	CodeTransferAPI       Code = 7
	CodeIsDirectory       Code = 8
	CodeFileNotExist      Code = 9
	CodeDirNotExist       Code = 10
	CodeTempFile          Code = 11
	CodeFileExists        Code = 12
	CodeQuota             Code = 13
	CodeMemory            Code = 14
	CodeDirStillExists    Code = 15
	CodeMissingParam      Code = 16
	CodeSrcFileNotExist   Code = 17
	CodeCopy              Code = 18
	CodeDirLink           Code = 19
	CodeSrcNotDir         Code = 20
	CodeReplicateTree     Code = 21
	CodePathMemory        Code = 22
	CodeSrcNotFile        Code = 23
	CodeCreateFile        Code = 24
	CodeBadRSA            Code = 25
	CodeDateNotRepr       Code = 26
	CodeTimestamp         Code = 27
	CodeLockToken         Code = 28
	CodeSrcPathNotExist   Code = 29
	CodeLocked            Code = 30
	CodeRename            Code = 31
	CodeKeepalive         Code = 32
	CodeNoProcKey         Code = 33
	CodeHPFOpen           Code = 34
	CodeHPFSeek           Code = 35
	CodeHPFAlloc          Code = 36
	CodeLoginFailed       Code = 37
	CodeBeforeLogin       Code = 38
	CodeAlreadyLogged     Code = 39
	CodeUserDB            Code = 40
	CodeChmod             Code = 41
	CodeNoSuchUser        Code = 42
	CodeNoSuchGroup       Code = 43
	CodeChown             Code = 44
	CodeSHA256            Code = 45
	CodeSwapKey           Code = 46
	CodeRmSecDir          Code = 47
	CodeJailACL           Code = 48
	CodeJailToken         Code = 49
	CodeBeforeInjail      Code = 50
	CodeAlreadyJailed     Code = 51
	CodeTLB               Code = 52
	CodeLSRV2             Code = 53
	CodeNetLock           Code = 54
	CodeNetMut            Code = 55
	CodeAlias             Code = 56
	CodeSecFSSet          Code = 57
	CodeSecFSRemove       Code = 58
	CodeSecFSIdentity     Code = 59
	CodeNotSecFS          Code = 60
	CodeFolderLock        Code = 61
	CodeCreateRequested   Code = 62
	CodeMkdirRecursive    Code = 63
	CodeRunBash           Code = 64
	CodeFlyContext        Code = 65
	CodeAES               Code = 66
	CodeFAIInit           Code = 67
	CodeFAITokenExpired   Code = 68
	CodeFAIKey            Code = 69
)

var codeText = map[Code]string{
	1:  "Access denied to location.",
	2:  "Incompatible protocol.",
	3:  "Invalid hash string.",
	4:  "Directory already exist.",
	5:  "Error adding new notification to listen.",
	6:  "Notify path list empty.",
	7:  "File transfer API error.",
	8:  "Requested file is a directory.",
	9:  "File does not exist.",
	10: "Directory does not exist.",
	11: "Failed to make a temporary file.",
	12: "File already exist.",
	13: "Quota exceeded.",
	14: "Internal memory error.",
	15: "Directory to remove still exist.",
	16: "Missing parameter from command.",
	17: "Source file does not exist.",
	18: "Copy general error.",
	19: "Directory can't be linked.",
	20: "Source path is not a directory.",
	21: "Error replicating directory tree.",
	22: "Memory error while creating space for path.",
	23: "Source path is not a file.",
	24: "Error creating new file.",
	25: "Bad public rsa encryption key.",
	26: "Date is not representable.",
	27: "Timestamp updating failed.",
	28: "Invalid characters in lock token.",
	29: "Source path does not exist.",
	30: "Directory is locked.",
	31: "Invalid renaming operation.",
	32: "Failed to set TCP keepalive parameters.",
	33: "Process without unique key.",
	34: "H-P interface failed to open file descriptor.",
	35: "H-P interface failed to set file position.",
	36: "H-P interface failed to allocate the buffer.",
	37: "Login failed.",
	38: "Invalid command before login.",
	39: "The process is already logged.",
	40: "Failed to open users database.",
	41: "Failed to change file mode.",
	42: "System user does not exist.",
	43: "System group does not exist.",
	44: "Failed to change file ownership.",
	45: "Failed to make SHA256 hash.",
	46: "Failed to swap the session key.",
	47: "Failed removing secure directory.",
	48: "Failed to open ACL file in jail directory.",
	49: "Invalid security token in jail directory.",
	50: "Invalid command before in-jail.",
	51: "The process is already in-jailed.",
	52: "Failed to retrieve TLB tuple.",
	53: "Failed running LSRV2.",
	54: "Failed to acquire or release NETLOCK.",
	55: "Failed to acquire or release NETMUT.",
	56: "Failed setting an alias.",
	57: "Failed setting secure FS permission.",
	58: "Failed removing secure FS permission.",
	59: "Failed getting secure FS permission identity.",
	60: "The directory does not belongs to secure FS.",
	61: "Unable to use Folder Locking System.",
	62: "Unable to create the requested file.",
	63: "Failed to create directory recursively.",
	64: "Failed running RUNBASH command.",
	65: "Unable to use the FlyContext System.",
	66: "Unable to start AES encryption system.",
	67: "Failed initializing FAI interface.",
	68: "Token expired for FAI access.",
	69: "FAI key is invalid.",
}

// Texts local to the XS_GATEWAY module (WIRE.md §4.2, §7).
const (
	GatewayInternalError  = "Internal error occurred."
	GatewayIdentityFailed = "Failed creating identity."
)

// Text returns the exact text the protocol sends after "FAILED N : " for c.
func (c Code) Text() string {
	if t, ok := codeText[c]; ok {
		return t
	}
	return "Unknown error."
}

// Line returns the complete failure line "FAILED N : text" for c.
func (c Code) Line() string { return FailedLine(c, c.Text()) }

// FailedLine formats "FAILED N : text" with an explicit text, for the few replies
// whose text differs from the table (the gateway's).
func FailedLine(c Code, text string) string {
	return "FAILED " + strconv.Itoa(int(c)) + " : " + text
}

// Reply words.
const (
	OK      = "OK"
	Failed  = "FAILED"
	Unknown = "UNKNOWN"
	Cont    = "CONT"
	Break   = "BREAK"
)

// Kind classifies a status line by its first word.
type Kind int

// The kinds of status line.
const (
	KindOther Kind = iota
	KindOK
	KindFailed
	KindUnknown
	KindCont
)

func (k Kind) String() string {
	switch k {
	case KindOK:
		return "OK"
	case KindFailed:
		return "FAILED"
	case KindUnknown:
		return "UNKNOWN"
	case KindCont:
		return "CONT"
	}
	return "OTHER"
}

// Status is a parsed reply body.
type Status struct {
	Kind Kind
	// Code is the failure code of a FAILED line (0 for the bare "FAILED ").
	Code Code
	// Text is the failure text of a FAILED line, or the payload after "OK " or
	// "CONT " (empty for a bare OK or CONT).
	Text string
	// Raw is the complete body.
	Raw []byte
}

// Err returns a *Error for a FAILED status, ErrUnknownCommand for UNKNOWN, and nil
// otherwise.
func (s Status) Err() error {
	switch s.Kind {
	case KindFailed:
		return &Error{Code: s.Code, Text: s.Text}
	case KindUnknown:
		return ErrUnknownCommand
	}
	return nil
}

// ErrUnknownCommand is returned when the server answers UNKNOWN.
var ErrUnknownCommand = errors.New("tfproto: server answered UNKNOWN")

// Error is a FAILED reply from the server.
type Error struct {
	Code Code
	Text string
}

func (e *Error) Error() string {
	if e.Code == 0 && e.Text == "" {
		return "FAILED"
	}
	return fmt.Sprintf("FAILED %d : %s", e.Code, e.Text)
}

// ParseStatus classifies a reply body. It accepts the spacing variants a server may
// send ("FAILED 16 : x", "FAILED 16: x", "FAILED 16 x", and the bare "FAILED ").
func ParseStatus(body []byte) Status {
	st := Status{Raw: body}
	word, rest, _ := bytes.Cut(body, []byte{' '})
	switch string(word) {
	case OK:
		st.Kind = KindOK
		st.Text = string(rest)
	case Cont:
		st.Kind = KindCont
		st.Text = string(rest)
	case Unknown:
		st.Kind = KindUnknown
	case Failed:
		st.Kind = KindFailed
		num, text, _ := bytes.Cut(bytes.TrimLeft(rest, " "), []byte{' '})
		if n, ok := bytes.CutSuffix(num, []byte{':'}); ok {
			num = n
		}
		if n, err := strconv.Atoi(string(num)); err == nil {
			st.Code = Code(n)
		} else {
			text = rest
		}
		text = bytes.TrimLeft(text, " ")
		if t, ok := bytes.CutPrefix(text, []byte(": ")); ok {
			text = t
		} else if t, ok := bytes.CutPrefix(text, []byte(":")); ok {
			text = t
		}
		st.Text = string(text)
	default:
		st.Kind = KindOther
		st.Text = string(body)
	}
	return st
}

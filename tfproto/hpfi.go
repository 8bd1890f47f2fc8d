package tfproto

// High-Performance File Interface codes (PUT, GET, PUTCAN, GETCAN), sent as raw
// 8-byte big-endian enciphered fields (WIRE.md §5.25–5.28).
const (
	HPFEnd    int64 = 0
	HPFStop   int64 = -1
	HPFCancel int64 = -2
	HPFCont   int64 = -3
	HPFFin    int64 = -127
)

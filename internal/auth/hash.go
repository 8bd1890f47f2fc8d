package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Password hashing: argon2id (RFC 9106) from golang.org/x/crypto, stored in the
// PHC string format "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>"
// (unpadded standard base64), so the parameters travel with each hash and can
// be raised later without breaking existing entries.
//
// Why argon2id rather than bcrypt: it is the first choice of RFC 9106 and the
// OWASP password storage guidance; it is memory-hard, so GPU/ASIC guessing of a
// stolen file is far more expensive; and it takes the whole password, where
// bcrypt silently stops at 72 bytes (x/crypto's bcrypt refuses longer ones, and
// the reference's plaintext passwords may be up to ~1000 bytes). The cost is
// memory per verification, which a LOGIN flood could turn into a denial of
// service; the parameters below (19 MiB, 2 passes, 1 lane: OWASP's minimum
// recommended argon2id setting) keep one verification at a few tens of
// milliseconds, and verifySlots caps how many run at once.

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
}

// DefaultParams are used for new hashes.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	phcID   = "$argon2id$"
)

// Limits on parameters read from a database file, so a corrupt or hostile entry
// cannot make one LOGIN allocate gigabytes or spin for minutes.
const (
	maxMemory = 1 << 20 // KiB = 1 GiB
	maxTime   = 64
)

// verifySlots bounds concurrent hash computations (memory × this is the most
// LOGIN hashing can hold at once).
var verifySlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

func isHash(secret string) bool { return strings.HasPrefix(secret, phcID) }

// HashPassword returns a PHC-format argon2id hash of password with a fresh
// random salt and DefaultParams.
func HashPassword(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	return hashWith(DefaultParams, password, salt)
}

func hashWith(p Params, password string, salt []byte) (string, error) {
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 {
		return "", errors.New("argon2id parameters must be positive")
	}
	key := compute(p, password, salt, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("%sv=%d$m=%d,t=%d,p=%d$%s$%s", phcID, argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

func compute(p Params, password string, salt []byte, n int) []byte {
	verifySlots <- struct{}{}
	defer func() { <-verifySlots }()
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(n))
}

type phc struct {
	params Params
	salt   []byte
	key    []byte
}

// parsePHC parses "$argon2id$v=19$m=..,t=..,p=..$salt$hash".
func parsePHC(s string) (phc, error) {
	var out phc
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return out, errBadEntry
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return out, fmt.Errorf("%w: argon2 version %q", errBadEntry, parts[2])
	}
	var seen [3]bool
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return out, errBadEntry
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return out, errBadEntry
		}
		switch k {
		case "m":
			if n > maxMemory || seen[0] {
				return out, errBadEntry
			}
			out.params.Memory, seen[0] = uint32(n), true
		case "t":
			if n > maxTime || seen[1] {
				return out, errBadEntry
			}
			out.params.Time, seen[1] = uint32(n), true
		case "p":
			if n > 255 || seen[2] {
				return out, errBadEntry
			}
			out.params.Threads, seen[2] = uint8(n), true
		default:
			return out, errBadEntry
		}
	}
	if !seen[0] || !seen[1] || !seen[2] || out.params.Memory < 8*uint32(out.params.Threads) {
		return out, errBadEntry
	}
	b64 := base64.RawStdEncoding
	var err error
	if out.salt, err = b64.DecodeString(parts[4]); err != nil || len(out.salt) < 8 {
		return out, errBadEntry
	}
	if out.key, err = b64.DecodeString(parts[5]); err != nil || len(out.key) < 16 || len(out.key) > 128 {
		return out, errBadEntry
	}
	return out, nil
}

// verifyHash recomputes the hash of password with the stored salt and
// parameters and compares in constant time. A malformed hash never verifies
// (the dummy work still runs so it costs the usual time).
func verifyHash(encoded, password string) bool {
	h, err := parsePHC(encoded)
	if err != nil {
		d, _ := parsePHC(dummy)
		compute(d.params, password, d.salt, keyLen)
		return false
	}
	got := compute(h.params, password, h.salt, len(h.key))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

package auth

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"strings"
)

// JailKeyFile is the name of the token file INJAIL reads in the directory to
// jail into (WIRE.md §5.35).
const JailKeyFile = "jail.key"

// maxJailKey bounds how much of a jail.key file is read.
const maxJailKey = 1 << 20

// JailTokenOK reports whether token is one of the lines of a jail.key file. As
// in the reference, each line is compared whole and exactly, with only its "\n"
// removed (a "\r" stays part of the line); an empty token never matches. Every
// line is compared, in constant time, so the answer's timing says nothing about
// which line or how much of it matched.
func JailTokenOK(r io.Reader, token string) (bool, error) {
	if token == "" {
		return false, nil
	}
	want := sha256.Sum256([]byte(token))
	br := bufio.NewReader(io.LimitReader(r, maxJailKey))
	match := 0
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			got := sha256.Sum256([]byte(strings.TrimSuffix(line, "\n")))
			match |= subtle.ConstantTimeCompare(got[:], want[:])
		}
		if err == io.EOF {
			return match == 1, nil
		}
		if err != nil {
			return false, fmt.Errorf("read %s: %w", JailKeyFile, err)
		}
	}
}

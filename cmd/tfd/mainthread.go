package main

import "github.com/tfd-project/tfd/internal/auth"

// The main goroutine keeps the process's main thread to itself, so that no
// session goroutine, which may take a user's file permissions for its thread,
// ever runs there (the runtime never ends the main thread; see
// internal/auth/persona_linux.go).
func init() { auth.LockMainThread() }

package auth

// Keep the test binary's main goroutine on the main thread (see Become).
func init() { LockMainThread() }

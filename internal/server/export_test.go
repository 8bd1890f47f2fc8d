package server

// SetMaxPersonaSessions changes the persona-thread cap for a test and returns
// a function restoring it.
func SetMaxPersonaSessions(n int64) (restore func()) {
	old := maxPersonaSessions
	maxPersonaSessions = n
	return func() { maxPersonaSessions = old }
}

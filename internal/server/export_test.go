package server

// SetMaxPersonaSessions changes the persona-thread cap for a test and returns
// a function restoring it.
func SetMaxPersonaSessions(n int64) (restore func()) {
	old := maxPersonaSessions
	maxPersonaSessions = n
	return func() { maxPersonaSessions = old }
}

// SetHPFWriteFault makes every HPFI file write call f first; a non-nil result
// is used as the write's error. It returns a function that removes the hook.
func SetHPFWriteFault(f func(off int64, n int) error) (restore func()) {
	hpfWriteFault.Store(&f)
	return func() { hpfWriteFault.Store(nil) }
}

// SetHPFReadFault is SetHPFWriteFault for the reads of GET and GETCAN.
func SetHPFReadFault(f func(off int64) error) (restore func()) {
	hpfReadFault.Store(&f)
	return func() { hpfReadFault.Store(nil) }
}

// SetHPFKeystreamAhead switches the keystream producer of transfers on or off
// and returns a function that restores the previous setting.
func SetHPFKeystreamAhead(on bool) (restore func()) {
	old := hpfAhead.Swap(on)
	return func() { hpfAhead.Store(old) }
}

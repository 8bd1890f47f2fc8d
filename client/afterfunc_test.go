package client

import (
	"context"
	"sync/atomic"
	"testing"
)

// Once f has started, stop waits for it to return, so nothing f does can
// come after what the caller does next (resetting a deadline).
func TestAfterFuncWaitWaitsForStartedFunc(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	stop := afterFuncWait(ctx, func() {
		close(started)
		<-release
		finished.Store(true)
	})
	cancel()
	<-started
	go close(release)
	if stop() {
		t.Fatal("stop reported f as prevented after it had started")
	}
	if !finished.Load() {
		t.Fatal("stop returned before f did")
	}
}

// Before ctx ends, stop prevents f.
func TestAfterFuncWaitPrevents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Bool
	stop := afterFuncWait(ctx, func() { ran.Store(true) })
	if !stop() {
		t.Fatal("stop did not prevent f")
	}
	cancel()
	if ran.Load() {
		t.Fatal("f ran after stop")
	}
}

package server_test

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tfd-project/tfd/internal/notify"
	"github.com/tfd-project/tfd/internal/servertest"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestMeasureIdleNotify prints the CPU that 100 idle notification sessions cost,
// event-driven and polling (TFD_MEASURE=1 go test -v -run TestMeasureIdleNotify).
// It asserts nothing: it is a measurement.
func TestMeasureIdleNotify(t *testing.T) {
	if os.Getenv("TFD_MEASURE") == "" {
		t.Skip()
	}
	for _, poll := range []bool{false, true} {
		for _, iv := range []string{"1e-9", ""} {
			notify.ForcePolling(poll)
			srv := servertest.Start(t)
			ntfyMkdirs(t, srv.Root, "d")
			const n = 100
			for range n {
				notifySession(t, srv, iv, [2]string{"", "d"})
			}
			waitSessions(t, srv, n)
			time.Sleep(200 * time.Millisecond)
			c0, w0 := cpuTime(), time.Now()
			time.Sleep(3 * time.Second)
			c1, w1 := cpuTime(), time.Now()
			fmt.Printf("poll=%v interval=%q sessions=%d: CPU %.1f%% of one core\n", poll, iv, n, 100*float64(c1-c0)/float64(w1.Sub(w0)))
			srv.Stop()
		}
	}
	notify.ForcePolling(false)
}

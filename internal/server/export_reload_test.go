package server

import (
	"errors"
	"sync"

	"github.com/tfd-project/tfd/internal/config"
)

// ReloadRefused is the HPFI buffer cap the test family refuses.
const ReloadRefused = 12345

// A test family with a reload hook: it refuses a configuration whose HPFI
// buffer cap is ReloadRefused and records the cap of every commit, per server.
var (
	reloadTestMu      sync.Mutex
	reloadTestCommits = map[*Server][]int64{}
)

func init() {
	registerFamily(family{name: "reloadtest", reload: func(s *Server, cur, next *config.Config) (func(), error) {
		if next.HPFIMaxBuffer == ReloadRefused {
			return nil, errors.New("refused by the test family")
		}
		v := next.HPFIMaxBuffer
		return func() {
			reloadTestMu.Lock()
			reloadTestCommits[s] = append(reloadTestCommits[s], v)
			reloadTestMu.Unlock()
		}, nil
	}})
}

// ReloadCommits returns the HPFI caps the test family committed for s.
func ReloadCommits(s *Server) []int64 {
	reloadTestMu.Lock()
	defer reloadTestMu.Unlock()
	return append([]int64(nil), reloadTestCommits[s]...)
}

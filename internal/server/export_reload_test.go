package server

import (
	"errors"
	"sync"

	"github.com/tfd-project/tfd/internal/config"
)

// A test family with a reload hook: it refuses a configuration whose TLB is
// "refuse" and records the TLB of every commit, per server.
var (
	reloadTestMu      sync.Mutex
	reloadTestCommits = map[*Server][]string{}
)

func init() {
	registerFamily(family{name: "reloadtest", reload: func(s *Server, cur, next *config.Config) (func(), error) {
		if next.TLB == "refuse" {
			return nil, errors.New("refused by the test family")
		}
		tlb := next.TLB
		return func() {
			reloadTestMu.Lock()
			reloadTestCommits[s] = append(reloadTestCommits[s], tlb)
			reloadTestMu.Unlock()
		}, nil
	}})
}

// ReloadCommits returns the TLB values the test family committed for s.
func ReloadCommits(s *Server) []string {
	reloadTestMu.Lock()
	defer reloadTestMu.Unlock()
	return append([]string(nil), reloadTestCommits[s]...)
}

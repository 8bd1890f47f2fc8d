package cluster

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStatusHTTP(t *testing.T) {
	nodes := startCluster(t, 2, func(i int) string { return "127.0.0.1:1034" + string(rune('5'+i)) })
	hs := httptest.NewServer(nodes[1].StatusHandler())
	defer hs.Close()
	st, err := FetchStatus(ctxFor(t, 0), hs.URL)
	if err == nil {
		t.Fatal("FetchStatus with an expired context succeeded")
	}
	st, err = FetchStatus(t.Context(), hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	if st.Self != "node1" || len(st.Nodes) != 2 || st.Nodes[0].Addr != "127.0.0.1:10345" || st.Nodes[1].Addr != "127.0.0.1:10346" {
		t.Fatalf("status %+v", st)
	}
	resp, err := http.Post(hs.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %s", resp.Status)
	}
	if _, err := FetchStatus(t.Context(), "127.0.0.1:1"); err == nil {
		t.Fatal("FetchStatus from a closed port succeeded")
	}
}

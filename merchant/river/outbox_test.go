package river_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/river"
)

func TestSignVerify(t *testing.T) {
	secret, old := []byte("whsec_new"), []byte("whsec_old")
	body := []byte(`{"id":"1","type":"order.paid"}`)
	at := time.Unix(1_800_000_000, 0)
	h := river.Sign(secret, at, body)
	if !strings.HasPrefix(h, "t=1800000000,v1=") || len(h) != len("t=1800000000,v1=")+64 {
		t.Fatalf("header %q", h)
	}
	for _, tc := range []struct {
		name    string
		header  string
		body    []byte
		now     time.Time
		secrets [][]byte
		want    error
	}{
		{"good", h, body, at, [][]byte{secret}, nil},
		{"rotation: old and new", h, body, at.Add(time.Minute), [][]byte{old, secret}, nil},
		{"299 s late", h, body, at.Add(299 * time.Second), [][]byte{secret}, nil},
		{"301 s late", h, body, at.Add(301 * time.Second), [][]byte{secret}, river.ErrStale},
		{"301 s early", h, body, at.Add(-301 * time.Second), [][]byte{secret}, river.ErrStale},
		{"other secret", h, body, at, [][]byte{old}, river.ErrBadSignature},
		{"body changed", h, append([]byte(" "), body...), at, [][]byte{secret}, river.ErrBadSignature},
		{"timestamp changed", strings.Replace(h, "t=1800000000", "t=1800000001", 1), body, at, [][]byte{secret}, river.ErrBadSignature},
		{"no v1", "t=1800000000", body, at, [][]byte{secret}, river.ErrNoSignature},
		{"empty", "", body, at, [][]byte{secret}, river.ErrNoSignature},
		{"junk", "t=x,v1=zz", body, at, [][]byte{secret}, river.ErrNoSignature},
		{"two v1, one good", "t=1800000000,v1=" + strings.Repeat("00", 32) + "," + h[len("t=1800000000,"):], body, at, [][]byte{secret}, nil},
	} {
		if err := river.Verify(tc.header, tc.body, tc.now, 0, tc.secrets...); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func ExampleSign() {
	body := []byte(`{"id":"7","type":"order.paid"}`)
	header := river.Sign([]byte("whsec_example"), time.Unix(1_800_000_000, 0), body)
	fmt.Println(river.Verify(header, body, time.Unix(1_800_000_060, 0), 0, []byte("whsec_example")))
	// Output: <nil>
}

// TestOutboxWebhookDown: a run stops after three failures in a row; the
// other events keep their place, untried.
func TestOutboxWebhookDown(t *testing.T) {
	h := newHarness(t, sqliteCase)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	var orders []*merchant.Order
	for range 5 {
		orders = append(orders, h.paidOrder())
	}
	r, err := river.NewRunner(river.Config{Payments: h.svc, Webhook: river.Webhook{URL: srv.URL, Secret: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.RunOnce(h.ctx, river.KindOutbox)
	if err != nil || res.Counts["failed"] != 3 || hits.Load() != 3 {
		t.Fatalf("run: %v %v; %d hits", res, err, hits.Load())
	}
	tried := 0
	for _, o := range orders {
		evs, _ := h.store.OutboxFor(h.ctx, o.OutTradeNo)
		if len(evs) != 1 || !evs[0].DeliveredAt.IsZero() {
			t.Fatalf("outbox of %s: %+v", o.OutTradeNo, evs)
		}
		if evs[0].Attempts > 0 {
			tried++
			if evs[0].LastError != "webhook answered HTTP 502" || !evs[0].NextAt.Equal(h.srv.Clock.Now().Add(10*time.Second)) {
				t.Errorf("failed event: %+v", evs[0])
			}
		}
	}
	if tried != 3 {
		t.Fatalf("%d events tried, want 3", tried)
	}
}

// TestOutboxDrainsBacklog: one run takes batch after batch until the
// outbox is empty, so the backlog cannot outgrow a fixed batch per run.
func TestOutboxDrainsBacklog(t *testing.T) {
	h := newHarness(t, sqliteCase)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	const n = 7
	for range n {
		h.paidOrder()
	}
	r, err := river.NewRunner(river.Config{Payments: h.svc, Limit: 2, Webhook: river.Webhook{URL: srv.URL, Secret: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.RunOnce(h.ctx, river.KindOutbox)
	if err != nil || res.Counts["delivered"] != n || hits.Load() != n {
		t.Fatalf("run: %v %v; %d hits, want %d", res, err, hits.Load(), n)
	}
}

package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/internal/config"
	"github.com/wxpay-go/wxpay/wxpaytest"
	"github.com/wxpay-go/wxpay/wxsim"
)

// The first platform certificate download is tried again after a bad
// answer (SYSTEM_ERROR, a 5xx, a probe signature), so that an instance
// restarted during WeChat's bad minute comes back; a definite refusal
// fails at once.
func TestNewV3RetriesTheFirstDownload(t *testing.T) {
	saved := startBackoff
	startBackoff = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
	t.Cleanup(func() { startBackoff = saved })
	srv := wxpaytest.NewServer(t)
	creds, err := srv.Sim.V3Credentials(srv.MchID)
	if err != nil {
		t.Fatal(err)
	}
	w := config.WeChat{AppID: srv.AppID, MchID: srv.MchID, APIVersion: "v3", CertSerial: creds.CertSerial,
		PrivateKeyPEM: wxpay.Secret(creds.PrivateKeyPEM), APIv3Key: wxpay.Secret(creds.APIv3Key), BaseURL: srv.URL}
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	for _, f := range []wxsim.Fault{
		{API: "v3_certificates", Kind: wxsim.FaultSystemError, Count: 2},
		{API: "v3_certificates", Kind: wxsim.FaultHTTP500},
		{API: "v3_certificates", Kind: wxsim.FaultV3Probe},
	} {
		if err := srv.Sim.InjectFault(f); err != nil {
			t.Fatal(err)
		}
		s, err := newV3(ctx, &w, "https://shop.example/wxpay/notify/pay", log, nil)
		if err != nil {
			t.Fatalf("after %s: %v", f.Kind, err)
		}
		if len(s.manager.Serials()) != 1 {
			t.Errorf("after %s: serials %v", f.Kind, s.manager.Serials())
		}
		s.stop()
	}

	// Faults that outlast the tries: an error, not a hang.
	if err := srv.Sim.InjectFault(wxsim.Fault{API: "v3_certificates", Kind: wxsim.FaultSystemError, Count: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := newV3(ctx, &w, "https://shop.example/wxpay/notify/pay", log, nil); err == nil || !strings.Contains(err.Error(), "platform certificates") {
		t.Fatalf("persistent SYSTEM_ERROR: %v", err)
	}
	srv.Sim.ClearFaults()

	// A wrong APIv3 key is not retried (the pause would be an hour).
	startBackoff = []time.Duration{time.Hour}
	bad := w
	bad.APIv3Key = wxpay.Secret(strings.Repeat("k", 32))
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := newV3(tctx, &bad, "https://shop.example/wxpay/notify/pay", log, nil); err == nil || tctx.Err() != nil {
		t.Fatalf("a wrong APIv3 key: %v (context %v)", err, tctx.Err())
	}
}

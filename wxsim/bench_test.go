package wxsim_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/wxsim"
)

// BenchmarkUnifiedOrder measures JSAPI unifiedorder calls through the
// handler (decode, verify the MD5 sign, validate, create the order, sign
// and encode the answer), each with a new out_trade_no; signing the
// request is included. Besides calls/s it reports the CPU time per call
// (cpu-µs/call), which does not depend on what else the machine runs.
func BenchmarkUnifiedOrder(b *testing.B) {
	sim, err := wxsim.New(wxsim.Config{Clock: wxsim.NewManualClock(start)})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	u, _ := sim.CreateUser(wxsim.NewUser{})
	var seq atomic.Int64
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			otn := "B" + strconv.FormatInt(seq.Add(1), 10) + "-BENCH" // ≥ 6 characters
			body := kv("body", "测试商店-商品", "out_trade_no", otn, "total_fee", "100", "spbill_create_ip", "127.0.0.1",
				"notify_url", "https://example.com/notify", "trade_type", "JSAPI", "openid", u.OpenID, "nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS").signed(apiKey).xmlBody()
			req, _ := http.NewRequest("POST", "http://api.mch.weixin.qq.com/pay/unifiedorder", io.NopCloser(bytes.NewReader(body)))
			rec := httptest.NewRecorder()
			sim.ServeHTTP(rec, req)
			if rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte("<prepay_id>")) {
				b.Fatalf("answer: %s", rec.Body.Bytes())
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/call")
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

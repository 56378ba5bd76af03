package loadtest

import (
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/wxsim"
)

// simServer is the simulator of the run, served on a loopback listener
// through a handler that times every call by API and rolls the dice of
// rate faults that share an API with another one.
type simServer struct {
	sim *wxsim.Simulator
	url string
	srv *http.Server

	stats *stats

	mu   sync.Mutex
	rng  *rand.Rand
	dice map[string][]FaultSpec // API → rate faults rolled here
}

func startSim(cfg Config, st *stats) (*simServer, error) {
	tr := &http.Transport{
		MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	sim, err := wxsim.New(wxsim.Config{
		TimeScale: cfg.TimeScale, CloseMinAge: cfg.CloseMinAge, Seed: cfg.Seed,
		HTTPClient: &http.Client{Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sim.Close()
		return nil, err
	}
	s := &simServer{sim: sim, url: "http://" + ln.Addr().String(), stats: st,
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), dice: map[string][]FaultSpec{}}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *simServer) close() {
	_ = s.srv.Close()
	_ = s.sim.Close()
}

// apiOf names a request for the latency table: the WeChat API (the last
// path element: unifiedorder, orderquery, refund, jscode2session …; for
// APIv3 the fault names v3_prepay, v3_query …) or the control call
// ("sim:request-payment").
func apiOf(path string) string {
	if api, ok := v3APIOf(path); ok {
		return api
	}
	if rest, ok := strings.CutPrefix(path, "/sim/v1/"); ok {
		name, _, _ := strings.Cut(rest, "/")
		return "sim:" + name
	}
	return path[strings.LastIndexByte(path, '/')+1:]
}

func (s *simServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	api := apiOf(r.URL.Path)
	s.roll(api)
	start := time.Now()
	s.sim.ServeHTTP(w, r)
	if !strings.HasPrefix(api, "sim:") {
		s.stats.wechat.get(api).Record(time.Since(start))
	}
	if strings.HasPrefix(w.Header().Get("Wechatpay-Signature"), apiv3.ProbePrefix) {
		s.stats.probeAnswers.Add(1)
	}
}

// roll injects, with its probability, one of the rate faults of api kept
// here: the simulator applies the first pending fault of an API only, so
// two rate faults on one API are rolled by the harness, one call at a
// time (the fault is then taken by this call or a concurrent one of the
// same API: the rate is the same).
func (s *simServer) roll(api string) {
	s.mu.Lock()
	fs := s.dice[api]
	if len(fs) == 0 {
		s.mu.Unlock()
		return
	}
	x := s.rng.Float64()
	var hit *FaultSpec
	for i := range fs {
		if x < fs[i].Rate {
			hit = &fs[i]
			break
		}
		x -= fs[i].Rate
	}
	s.mu.Unlock()
	if hit != nil {
		_ = s.sim.InjectFault(hit.fault(1))
	}
}

func (s *simServer) setDice(d map[string][]FaultSpec) {
	s.mu.Lock()
	s.dice = d
	s.mu.Unlock()
}

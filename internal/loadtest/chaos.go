package loadtest

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// chaos is the nemesis of the run: faults, duplicated and reordered
// notifies, and instance kills, from start to stop.
type chaos struct {
	e           *engine
	notifyRates []FaultSpec // notify faults armed per payment
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	mu          sync.Mutex
	kills       []KillEvent
}

// KillEvent is one SIGKILL of an instance: when (seconds since the users
// started), which, and how long until it was ready again.
type KillEvent struct {
	T         float64 `json:"t"`
	Instance  int     `json:"instance"`
	DownForMS float64 `json:"down_for_ms"`
}

func newChaos(e *engine) *chaos { return &chaos{e: e} }

func (c *chaos) start(ctx context.Context) error {
	e, sim := c.e, c.e.sim.sim
	rates := map[string][]FaultSpec{}
	for _, f := range e.cfg.Faults {
		switch {
		case f.API == "notify" && f.Rate > 0:
			c.notifyRates = append(c.notifyRates, f)
		case f.Rate > 0:
			rates[f.API] = append(rates[f.API], f)
		default:
			if err := sim.InjectFault(f.fault(f.Count)); err != nil {
				return err
			}
		}
	}
	if err := c.startV3Probes(rates); err != nil {
		return err
	}
	dice := map[string][]FaultSpec{}
	for api, fs := range rates {
		if len(fs) == 1 {
			// The simulator's own probabilistic fault, for the whole run.
			f := fs[0].fault(1 << 30)
			f.Rate = fs[0].Rate
			if err := sim.InjectFault(f); err != nil {
				return err
			}
			continue
		}
		dice[api] = fs
	}
	e.sim.setDice(dice)
	if e.cfg.DupNotifies > 0 {
		sim.NotifyDuplicate(1 << 30)
	}
	lctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	if e.cfg.Reorder {
		c.wg.Add(1)
		go c.reorder(lctx)
	}
	if e.cfg.KillEvery > 0 {
		c.wg.Add(1)
		go c.killer(lctx)
	}
	return nil
}

// beforePay arms the notify faults of --faults for the payment about to
// be made, each with its probability.
func (c *chaos) beforePay(rng *rand.Rand) {
	for _, f := range c.notifyRates {
		if rng.Float64() < f.Rate {
			_ = c.e.sim.sim.InjectFault(f.fault(1))
		}
	}
}

// reorder holds notifies in windows of 4 (or what 50 ms brings) and
// sends each window newest first.
func (c *chaos) reorder(ctx context.Context) {
	defer c.wg.Done()
	sim := c.e.sim.sim
	defer sim.ReleaseNotifies()
	for ctx.Err() == nil {
		sim.NotifyReorder(4)
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
		sim.ReleaseNotifies()
	}
}

// killer kills a random instance every KillEvery and restarts it after
// KillPause, on the same port.
func (c *chaos) killer(ctx context.Context) {
	defer c.wg.Done()
	e := c.e
	rng := rand.New(rand.NewPCG(e.cfg.Seed, 0x4b111))
	t := time.NewTicker(e.cfg.KillEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if e.cfg.MaxKills > 0 && len(c.killEvents()) >= e.cfg.MaxKills {
			return
		}
		in := e.insts[rng.IntN(len(e.insts))]
		if !in.running() {
			continue
		}
		at := time.Now()
		in.kill()
		time.Sleep(e.cfg.KillPause)
		// Restarted whatever ctx says: the run needs every instance back.
		err := in.start(context.Background())
		if err == nil {
			err = in.waitReady(context.Background(), 60*time.Second)
		}
		if err != nil {
			e.stats.err("restart", err)
		}
		c.mu.Lock()
		c.kills = append(c.kills, KillEvent{T: round(at.Sub(e.driveStart).Seconds(), 3), Instance: in.idx,
			DownForMS: round(float64(time.Since(at))/float64(time.Millisecond), 1)})
		c.mu.Unlock()
		e.logf("killed instance %d (SIGKILL); up again after %s", in.idx, time.Since(at).Round(time.Millisecond))
	}
}

// stop ends the chaos: no more kills (the one under way finishes), no
// pending fault, held notifies sent.
func (c *chaos) stop() {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	c.e.sim.setDice(nil)
	c.e.sim.sim.ClearFaults()
	if c.e.cfg.V3 {
		_ = c.e.sim.sim.SetV3ProbeRate(0, 0)
	}
	c.e.sim.sim.ReleaseNotifies()
}

func (c *chaos) killEvents() []KillEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]KillEvent(nil), c.kills...)
}

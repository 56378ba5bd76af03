package loadtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// startSamplers runs, until ctx ends, the 250 ms loop that samples the
// instances' peak RSS, draws the progress bar, and every second adds a
// tick to the timeline. The returned channel closes when it has stopped.
func (e *engine) startSamplers(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		var last Tick
		lastAt := e.driveStart
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				for _, in := range e.insts {
					in.sampleRSS()
				}
				if e.cfg.Progress != nil {
					e.drawProgress(true)
				}
				return
			case <-t.C:
			}
			for _, in := range e.insts {
				in.sampleRSS()
			}
			if n%4 == 0 {
				now := time.Now()
				cur := Tick{Created: e.stats.created.Load(), Paid: e.stats.paid.Load(), Errors: e.stats.errs.Load(),
					Notifies: int64(e.sim.sim.NotifyStats().Acknowledged)}
				secs := now.Sub(lastAt).Seconds()
				tick := Tick{T: round(now.Sub(e.driveStart).Seconds(), 2),
					Created: perSec(cur.Created-last.Created, secs), Paid: perSec(cur.Paid-last.Paid, secs),
					Errors: perSec(cur.Errors-last.Errors, secs), Notifies: perSec(cur.Notifies-last.Notifies, secs)}
				e.stats.mu.Lock()
				if len(e.stats.timeline) < 24*3600 {
					e.stats.timeline = append(e.stats.timeline, tick)
				}
				e.stats.mu.Unlock()
				last, lastAt = cur, now
			}
			if e.cfg.Progress != nil {
				e.drawProgress(false)
			}
		}
	}()
	return done
}

func perSec(n int64, secs float64) int64 {
	if secs <= 0 {
		return n
	}
	return int64(float64(n)/secs + 0.5)
}

// drawProgress writes the bar over the previous one.
func (e *engine) drawProgress(final bool) {
	st := e.stats
	done, total := st.done.Load(), int64(e.cfg.Orders)
	const width = 28
	fill := int(int64(width) * done / max(total, 1))
	secs := max(since(e.driveStart), 0.001)
	kills := 0
	if e.chaos != nil {
		kills = len(e.chaos.killEvents())
	}
	line := fmt.Sprintf("\r[%s%s] %d/%d users  paid %d (%.0f/s)  errors %d  kills %d  %s ",
		strings.Repeat("#", fill), strings.Repeat(".", width-fill), done, total, st.paid.Load(),
		float64(st.paid.Load())/secs, st.errs.Load(), kills, time.Duration(secs*float64(time.Second)).Round(time.Second))
	if final {
		line += "\n"
	}
	fmt.Fprint(e.cfg.Progress, line)
}

// selfPeakKB is this process's VmHWM (the simulator and the users).
func selfPeakKB() int64 {
	kb, _ := vmHWM(os.Getpid())
	return kb
}

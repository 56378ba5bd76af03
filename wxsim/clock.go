package wxsim

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"
)

// Clock is the simulator's source of time. Everything the simulator
// stamps (time_end, refund success times, the bill day) and everything it
// schedules (notify retries, refund completion, a USERPAYING micropay
// finishing) follows it.
//
// Two implementations are provided: ManualClock, for tests, where nothing
// happens until the clock is advanced; and RealClock, the wall clock with
// an offset that can be moved forward. Any other Clock is treated like a
// real one and polled.
type Clock interface {
	Now() time.Time
}

// ErrClockFixed is returned when asked to advance a Clock that is neither
// a ManualClock nor a RealClock.
var ErrClockFixed = errors.New("wxsim: this clock cannot be advanced")

// ManualClock is a fake clock for deterministic tests. Its time moves only
// when Advance is called. Once a Simulator uses it, Advance steps through
// every piece of work due before the new time, in order, setting the clock
// to each one's due time while it runs, and returns when all of it is done:
// a test advances by 15 s and finds the first notify retry in the log,
// without sleeping.
type ManualClock struct {
	mu    sync.Mutex
	now   time.Time
	sched *scheduler
}

// NewManualClock returns a ManualClock set to start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (a negative d does nothing) and,
// when a Simulator uses the clock, runs everything that falls due.
func (c *ManualClock) Advance(d time.Duration) {
	if d < 0 {
		d = 0
	}
	c.mu.Lock()
	s := c.sched
	target := c.now.Add(d)
	if s == nil {
		c.now = target
	}
	c.mu.Unlock()
	if s != nil {
		s.stepTo(target)
	}
}

// set moves the clock forward to t; it never goes back.
func (c *ManualClock) set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
}

func (c *ManualClock) attach(s *scheduler) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sched != nil && s != nil {
		return errors.New("wxsim: the ManualClock is already used by another Simulator")
	}
	c.sched = s
	return nil
}

// RealClock is the wall clock plus an offset that Advance moves forward:
// the simulator's day can be pushed past midnight to fetch a bill, or past
// an order's time_expire, without waiting.
type RealClock struct {
	mu     sync.Mutex
	offset time.Duration
	sched  *scheduler
}

// NewRealClock returns a RealClock with no offset.
func NewRealClock() *RealClock { return &RealClock{} }

// Now returns the wall-clock time plus the offset.
func (c *RealClock) Now() time.Time {
	c.mu.Lock()
	off := c.offset
	c.mu.Unlock()
	return time.Now().Add(off)
}

// Advance moves the clock forward by d (a negative d does nothing) and,
// when a Simulator uses the clock, starts everything that falls due and
// waits for it.
func (c *RealClock) Advance(d time.Duration) {
	if d < 0 {
		d = 0
	}
	c.mu.Lock()
	c.offset += d
	s := c.sched
	c.mu.Unlock()
	if s != nil {
		s.flush()
	}
}

func (c *RealClock) attach(s *scheduler) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sched != nil && s != nil {
		return errors.New("wxsim: the RealClock is already used by another Simulator")
	}
	c.sched = s
	return nil
}

// task is one piece of scheduled work.
type task struct {
	due   time.Time
	seq   uint64
	fn    func()
	index int // in the heap; -1 when not queued
}

type taskHeap []*task

func (h taskHeap) Len() int { return len(h) }
func (h taskHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h taskHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *taskHeap) Push(x any) {
	t := x.(*task)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *taskHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}

// scheduler runs work at simulator-clock times. With a ManualClock all
// work runs one piece at a time (under execMu), either in stepTo or, for
// work due now, in the background loop; with any other clock each piece
// runs in its own goroutine when due.
type scheduler struct {
	clock  Clock
	manual *ManualClock
	scale  float64
	ctx    context.Context // cancelled by close; work should give up
	cancel context.CancelFunc
	onErr  func(any)

	mu      sync.Mutex
	cond    *sync.Cond // signalled when running drops or the heap changes
	h       taskHeap
	seq     uint64
	running int
	closed  bool
	wake    chan struct{}
	done    chan struct{}
	loopWG  sync.WaitGroup

	execMu sync.Mutex // ManualClock: one piece of work at a time
}

func newScheduler(clock Clock, scale float64, onPanic func(any)) *scheduler {
	s := &scheduler{clock: clock, scale: scale, wake: make(chan struct{}, 1), done: make(chan struct{}), onErr: onPanic}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cond = sync.NewCond(&s.mu)
	if m, ok := clock.(*ManualClock); ok {
		s.manual = m
	}
	return s
}

func (s *scheduler) start() {
	s.loopWG.Add(1)
	go s.loop()
}

// scaled divides a delay by the time scale.
func (s *scheduler) scaled(d time.Duration) time.Duration {
	if s.scale <= 1 {
		return d
	}
	return time.Duration(float64(d) / s.scale)
}

// after schedules fn d from now, d divided by the time scale.
func (s *scheduler) after(d time.Duration, fn func()) *task {
	return s.at(s.clock.Now().Add(s.scaled(d)), fn)
}

// at schedules fn at simulator time due.
func (s *scheduler) at(due time.Time, fn func()) *task {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return &task{index: -1}
	}
	s.seq++
	t := &task{due: due, seq: s.seq, fn: fn}
	heap.Push(&s.h, t)
	s.mu.Unlock()
	s.kick()
	return t
}

// cancel removes t if it has not run yet; it reports whether it did.
func (s *scheduler) cancelTask(t *task) bool {
	if t == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.index < 0 || t.index >= len(s.h) || s.h[t.index] != t {
		return false
	}
	heap.Remove(&s.h, t.index)
	s.cond.Broadcast()
	return true
}

func (s *scheduler) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// popDue removes and returns the earliest task due at or before t, or nil.
func (s *scheduler) popDue(t time.Time) *task {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.h) == 0 || s.h[0].due.After(t) {
		return nil
	}
	s.running++
	return heap.Pop(&s.h).(*task)
}

func (s *scheduler) run(t *task) {
	defer func() {
		if r := recover(); r != nil && s.onErr != nil {
			s.onErr(r)
		}
		s.mu.Lock()
		s.running--
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	if t.fn != nil {
		t.fn()
	}
}

// loop runs work as it falls due.
func (s *scheduler) loop() {
	defer s.loopWG.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if s.manual != nil {
			s.execMu.Lock()
			for t := s.popDue(s.clock.Now()); t != nil; t = s.popDue(s.clock.Now()) {
				s.run(t)
			}
			s.execMu.Unlock()
			select {
			case <-s.wake:
			case <-s.done:
				return
			}
			continue
		}
		now := s.clock.Now()
		for t := s.popDue(now); t != nil; t = s.popDue(now) {
			go s.run(t)
		}
		wait := time.Hour
		s.mu.Lock()
		if len(s.h) > 0 {
			wait = s.h[0].due.Sub(now)
		}
		s.mu.Unlock()
		if _, ok := s.clock.(*RealClock); !ok && wait > 50*time.Millisecond {
			wait = 50 * time.Millisecond // a clock we cannot see move: poll it
		}
		if wait < 0 {
			wait = 0
		}
		timer.Reset(wait)
		select {
		case <-s.wake:
		case <-timer.C:
		case <-s.done:
			return
		}
	}
}

// stepTo (ManualClock) runs, in order, every task due at or before target,
// setting the clock to each task's due time, then sets it to target.
func (s *scheduler) stepTo(target time.Time) {
	s.execMu.Lock()
	defer s.execMu.Unlock()
	for {
		t := s.popDue(target)
		if t == nil {
			break
		}
		s.manual.set(t.due)
		s.run(t)
	}
	s.manual.set(target)
}

// flush runs everything due now and waits until it has finished.
func (s *scheduler) flush() {
	if s.manual != nil {
		s.execMu.Lock()
		for t := s.popDue(s.clock.Now()); t != nil; t = s.popDue(s.clock.Now()) {
			s.run(t)
		}
		s.execMu.Unlock()
		return
	}
	s.kick()
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.closed {
		now := s.clock.Now()
		if s.running == 0 && (len(s.h) == 0 || s.h[0].due.After(now)) {
			return
		}
		if s.running == 0 {
			// Due work the loop has not picked up yet.
			s.mu.Unlock()
			s.kick()
			time.Sleep(time.Millisecond)
			s.mu.Lock()
			continue
		}
		s.cond.Wait()
	}
}

// quiesce runs or waits for every scheduled task, including those due in
// the future: with a ManualClock it advances the clock through them; with
// a real clock it waits for them, or for ctx.
func (s *scheduler) quiesce(ctx context.Context) error {
	if s.manual != nil {
		for i := 0; ; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			s.mu.Lock()
			var next time.Time
			empty := len(s.h) == 0
			if !empty {
				next = s.h[0].due
			}
			s.mu.Unlock()
			if empty {
				s.flush()
				return nil
			}
			s.stepTo(next)
		}
	}
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.running > 0 || len(s.h) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.closed {
			return nil
		}
		s.cond.Wait()
	}
	return nil
}

// pending returns the number of scheduled and running tasks.
func (s *scheduler) pending() (scheduled, running int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.h), s.running
}

// close stops the loop, drops scheduled work, cancels running work's
// context and waits for the running work to return.
func (s *scheduler) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.h = nil
	s.cond.Broadcast()
	s.mu.Unlock()
	s.cancel()
	close(s.done)
	s.loopWG.Wait()
	s.mu.Lock()
	for s.running > 0 {
		s.cond.Wait()
	}
	s.mu.Unlock()
}

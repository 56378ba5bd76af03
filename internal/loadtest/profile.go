package loadtest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"
)

// startProfiles starts the CPU profiles of ProfileDir: this process's
// with runtime/pprof, each instance's from its /debug/pprof/profile. The
// returned function ends them (the instances' end by themselves after
// ProfileSeconds), then saves the heap profiles.
func (e *engine) startProfiles() (stop func()) {
	dir := e.cfg.ProfileDir
	if dir == "" {
		return func() {}
	}
	secs := e.cfg.ProfileSeconds
	if secs <= 0 {
		secs = 15
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.note("profiles: " + err.Error())
		return func() {}
	}
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: time.Duration(secs+30) * time.Second}
	fetch := func(url, path string) {
		resp, err := hc.Get(url)
		if err != nil {
			e.note("profiles: " + err.Error())
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err == nil {
			_, err = io.Copy(f, resp.Body)
			f.Close()
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			e.note(fmt.Sprintf("profiles: %s: HTTP %d %v", url, resp.StatusCode, err))
		}
	}
	for _, in := range e.insts {
		if in.pprofAddr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fetch(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", in.pprofAddr, secs),
				filepath.Join(dir, fmt.Sprintf("instance-%d.cpu.pprof", in.idx)))
		}()
	}
	var once sync.Once
	var f *os.File
	stopSelf := func() {
		once.Do(func() {
			if f != nil {
				pprof.StopCPUProfile()
				f.Close()
			}
		})
	}
	if ff, err := os.Create(filepath.Join(dir, "load.cpu.pprof")); err == nil {
		if pprof.StartCPUProfile(ff) == nil {
			f = ff
		} else {
			ff.Close()
		}
	}
	t := time.AfterFunc(time.Duration(secs)*time.Second, stopSelf)
	return func() {
		t.Stop()
		stopSelf()
		wg.Wait()
		for _, in := range e.insts {
			if in.pprofAddr != "" {
				fetch("http://"+in.pprofAddr+"/debug/pprof/heap", filepath.Join(dir, fmt.Sprintf("instance-%d.heap.pprof", in.idx)))
			}
		}
		if hf, err := os.Create(filepath.Join(dir, "load.heap.pprof")); err == nil {
			_ = pprof.WriteHeapProfile(hf)
			hf.Close()
		}
	}
}

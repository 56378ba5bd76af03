package wxsim

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"time"
)

// loginCode is a code wx.login returned: single use, short-lived, for one
// app and one user.
type loginCode struct {
	appID   string
	user    *user
	openID  string
	expires time.Time
	used    bool
}

// LoginCode returns what wx.login returns in the mini program appID for the
// user with openID (any of the user's openids): a code valid once, for
// Config.LoginCodeTTL, that jscode2session exchanges for the user's openid
// in appID.
func (s *Simulator) LoginCode(appID, openID string) (string, error) {
	if _, ok := s.apps[appID]; !ok {
		return "", ErrUnknownApp
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.byOpenID[openID]
	if u == nil {
		return "", ErrUnknownUser
	}
	code := s.ids.NewID(IDLoginCode, now)
	s.loginCodes[code] = &loginCode{appID: appID, user: u, openID: s.openIDForLocked(u, appID), expires: now.Add(s.cfg.LoginCodeTTL)}
	return code, nil
}

// jsCodeError is an errcode answer of jscode2session (protocol.md §12).
type jsCodeError struct {
	code int
	msg  string
}

// serveJSCode2Session serves GET /sns/jscode2session.
func (s *Simulator) serveJSCode2Session(w http.ResponseWriter, r *http.Request) {
	now := s.clock.Now()
	rid := func() string { return ", rid: " + s.ids.NewID(IDRequest, now) }
	fail := func(e jsCodeError) {
		writeJSON(w, http.StatusOK, map[string]any{"errcode": e.code, "errmsg": e.msg + rid()})
	}
	if f := s.faults.take("jscode2session"); f != nil {
		switch f.Kind {
		case FaultHTTP500:
			http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
			return
		case FaultDropBeforeCommit, FaultDropAfterCommit:
			dropConnection(w)
			return
		case FaultDelay:
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				return
			}
		case FaultErrCode:
			var code int
			if err := json.Unmarshal([]byte(f.ErrCode), &code); err != nil {
				code = -1
			}
			fail(jsCodeError{code, "injected error"})
			return
		default:
			fail(jsCodeError{-1, "system error"})
			return
		}
	}
	if r.Method != http.MethodGet {
		fail(jsCodeError{43001, "require GET method"})
		return
	}
	q := r.URL.Query()
	appID, secret, code, grant := q.Get("appid"), q.Get("secret"), q.Get("js_code"), q.Get("grant_type")
	switch {
	case appID == "":
		fail(jsCodeError{41002, "appid missing"})
		return
	case secret == "":
		fail(jsCodeError{41004, "appsecret missing"})
		return
	case code == "":
		fail(jsCodeError{41008, "missing code"})
		return
	case grant != "authorization_code":
		fail(jsCodeError{40002, "invalid grant_type"})
		return
	}
	want, known := s.apps[appID]
	if !known {
		fail(jsCodeError{40013, "invalid appid"})
		return
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		fail(jsCodeError{40125, "invalid appsecret"})
		return
	}
	s.mu.Lock()
	lc := s.loginCodes[code]
	switch {
	case lc == nil || lc.appID != appID || !now.Before(lc.expires):
		s.mu.Unlock()
		fail(jsCodeError{40029, "invalid code"})
		return
	case lc.used:
		s.mu.Unlock()
		fail(jsCodeError{40163, "code been used"})
		return
	}
	lc.used = true
	openID := lc.openID
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"session_key": s.ids.NewID(IDSessionKey, now), "openid": openID})
}

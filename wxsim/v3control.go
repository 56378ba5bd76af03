package wxsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/wxpay-go/wxpay"
)

// v3ControlRoutes adds the APIv3 part of the control API:
//
//	GET    /sim/v1/v3/merchants/{mch_id}                       V3Credentials
//	POST   /sim/v1/v3/merchants/{mch_id}/rotate                {"share": 1}: RotatePlatformCertificate
//	POST   /sim/v1/v3/merchants/{mch_id}/certificate-share     {"share": 0.5}: SetPlatformCertificateShare
//	DELETE /sim/v1/v3/merchants/{mch_id}/certificates/{serial} RemovePlatformCertificate
//	POST   /sim/v1/v3/merchants/{mch_id}/public-key            {"share": 0.3}: SwitchToPublicKey
//	GET|POST /sim/v1/v3/clock-skew                             {"seconds": -301}: SetV3ClockSkew
//	GET|POST /sim/v1/v3/probe                                  {"responses": 0.1, "notifies": 0.1}: SetV3ProbeRate
//	POST   /sim/v1/v3/notify                                   SendV3Notify (see ctlV3Notify)
//
// mch_id "all" addresses every merchant where the Go method takes "".
func (s *Simulator) v3ControlRoutes(route func(string, map[string]http.HandlerFunc)) {
	route("/sim/v1/v3/merchants/{mch_id}", map[string]http.HandlerFunc{"GET": s.ctlV3Merchant})
	route("/sim/v1/v3/merchants/{mch_id}/rotate", map[string]http.HandlerFunc{"POST": s.ctlV3Rotate})
	route("/sim/v1/v3/merchants/{mch_id}/certificate-share", map[string]http.HandlerFunc{"POST": s.ctlV3CertShare})
	route("/sim/v1/v3/merchants/{mch_id}/certificates/{serial}", map[string]http.HandlerFunc{"DELETE": s.ctlV3RemoveCert})
	route("/sim/v1/v3/merchants/{mch_id}/public-key", map[string]http.HandlerFunc{"POST": s.ctlV3PublicKey})
	route("/sim/v1/v3/clock-skew", map[string]http.HandlerFunc{"GET": s.ctlV3Skew, "POST": s.ctlV3Skew})
	route("/sim/v1/v3/probe", map[string]http.HandlerFunc{"GET": s.ctlV3Probe, "POST": s.ctlV3Probe})
	route("/sim/v1/v3/notify", map[string]http.HandlerFunc{"POST": s.ctlV3Notify})
}

// ctlMchID reads the mch_id path value: "all" is every merchant.
func ctlMchID(r *http.Request) string {
	id := r.PathValue("mch_id")
	if id == "all" {
		return ""
	}
	return id
}

func v3CtlStatus(err error) int {
	if errors.Is(err, ErrUnknownMerchant) {
		return http.StatusNotFound
	}
	return errStatus(err)
}

func (s *Simulator) ctlV3Merchant(w http.ResponseWriter, r *http.Request) {
	c, err := s.V3Credentials(ctlMchID(r))
	if err != nil {
		writeError(w, v3CtlStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// readShare reads {"share": x}; absent means def.
func readShare(w http.ResponseWriter, r *http.Request, def float64) (float64, bool) {
	var req struct {
		Share *float64 `json:"share"`
	}
	if !readJSON(w, r, &req) {
		return 0, false
	}
	if req.Share == nil {
		return def, true
	}
	return *req.Share, true
}

func (s *Simulator) ctlV3Answer(w http.ResponseWriter, r *http.Request, extra map[string]any) {
	id := ctlMchID(r)
	c, err := s.V3Credentials(id)
	if err != nil {
		writeError(w, v3CtlStatus(err), err.Error())
		return
	}
	out := map[string]any{"credentials": c}
	for k, v := range extra {
		out[k] = v
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Simulator) ctlV3Rotate(w http.ResponseWriter, r *http.Request) {
	share, ok := readShare(w, r, 1)
	if !ok {
		return
	}
	serial, err := s.RotatePlatformCertificate(ctlMchID(r), share)
	if err != nil {
		writeError(w, v3CtlStatus(err), err.Error())
		return
	}
	s.ctlV3Answer(w, r, map[string]any{"serial_no": serial})
}

func (s *Simulator) ctlV3CertShare(w http.ResponseWriter, r *http.Request) {
	share, ok := readShare(w, r, 1)
	if !ok {
		return
	}
	if err := s.SetPlatformCertificateShare(ctlMchID(r), share); err != nil {
		writeError(w, v3CtlStatus(err), err.Error())
		return
	}
	s.ctlV3Answer(w, r, nil)
}

func (s *Simulator) ctlV3RemoveCert(w http.ResponseWriter, r *http.Request) {
	if err := s.RemovePlatformCertificate(r.PathValue("mch_id"), r.PathValue("serial")); err != nil {
		writeError(w, v3CtlStatus(err), err.Error())
		return
	}
	s.ctlV3Answer(w, r, nil)
}

func (s *Simulator) ctlV3PublicKey(w http.ResponseWriter, r *http.Request) {
	share, ok := readShare(w, r, 1)
	if !ok {
		return
	}
	id, err := s.SwitchToPublicKey(ctlMchID(r), share)
	if err != nil {
		writeError(w, v3CtlStatus(err), err.Error())
		return
	}
	s.ctlV3Answer(w, r, map[string]any{"public_key_id": id})
}

func (s *Simulator) ctlV3Skew(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var req struct {
			Seconds *float64 `json:"seconds"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if req.Seconds == nil || math.IsNaN(*req.Seconds) || math.Abs(*req.Seconds) > 10*365*86400 {
			writeError(w, http.StatusBadRequest, "seconds must be a number of seconds (negative: WeChat's clock is behind)")
			return
		}
		s.SetV3ClockSkew(time.Duration(*req.Seconds * float64(time.Second)))
	}
	writeJSON(w, http.StatusOK, map[string]any{"seconds": s.V3ClockSkew().Seconds(), "wechat_now": s.v3.now().In(wxpay.China).Format(time.RFC3339)})
}

func (s *Simulator) ctlV3Probe(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var req struct {
			Responses float64 `json:"responses"`
			Notifies  float64 `json:"notifies"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if err := s.SetV3ProbeRate(req.Responses, req.Notifies); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	resp, notif := s.v3.probeRates()
	writeJSON(w, http.StatusOK, map[string]any{"responses": resp, "notifies": notif})
}

// ctlV3Notify sends a v3 notify, possibly malicious, with SendV3Notify:
//
//	{"mch_id": "…", "out_trade_no": "…", "out_refund_no": "…",
//	 "event_type": "…", "summary": "…",
//	 "resource": {"amount": {"total": 1}},   merged into the resource (null deletes)
//	 "associated_data": "…", "nonce": "short", "ciphertext": "…",
//	 "body": "…the whole body…"}
//
// Every field but out_trade_no is optional.
func (s *Simulator) ctlV3Notify(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MchID          string          `json:"mch_id"`
		OutTradeNo     string          `json:"out_trade_no"`
		OutRefundNo    string          `json:"out_refund_no"`
		EventType      *string         `json:"event_type"`
		Summary        *string         `json:"summary"`
		Resource       json.RawMessage `json:"resource"`
		AssociatedData *string         `json:"associated_data"`
		Nonce          *string         `json:"nonce"`
		Ciphertext     *string         `json:"ciphertext"`
		Body           *string         `json:"body"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.OutTradeNo == "" {
		writeError(w, http.StatusBadRequest, "out_trade_no is required")
		return
	}
	var patch map[string]any
	if len(req.Resource) > 0 {
		dec := json.NewDecoder(bytes.NewReader(req.Resource))
		dec.UseNumber()
		if err := dec.Decode(&patch); err != nil {
			writeError(w, http.StatusBadRequest, "resource must be a JSON object: "+err.Error())
			return
		}
	}
	a, err := s.SendV3Notify(r.Context(), req.MchID, req.OutTradeNo, req.OutRefundNo, func(m *V3NotifyMessage) {
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&m.EventType, req.EventType)
		set(&m.Summary, req.Summary)
		set(&m.AssociatedData, req.AssociatedData)
		set(&m.Nonce, req.Nonce)
		set(&m.Ciphertext, req.Ciphertext)
		if req.Body != nil {
			m.Body = []byte(*req.Body)
		}
		mergeJSON(m.Resource, patch)
	})
	if err != nil {
		writeError(w, v3CtlStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// mergeJSON merges patch into dst: objects recursively, null deletes,
// anything else replaces.
func mergeJSON(dst, patch map[string]any) {
	for k, v := range patch {
		if v == nil {
			delete(dst, k)
			continue
		}
		if pm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeJSON(dm, pm)
				continue
			}
		}
		dst[k] = v
	}
}

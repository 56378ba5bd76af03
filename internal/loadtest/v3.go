package loadtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/wxpay-go/wxpay/internal/config"
	"github.com/wxpay-go/wxpay/wxsim"
)

// The verifier modes of an APIv3 run are those of the service's config
// (wechat.verifier).
const (
	VerifierCertificates = config.VerifierCertificates
	VerifierPublicKey    = config.VerifierPublicKey
	VerifierBoth         = config.VerifierBoth
)

// ChaosFaultsV3 is the fault set of --chaos with --v3: ChaosFaults on the
// APIv3 endpoints (v3_prepay, v3_query, v3_close, v3_refund,
// v3_refundquery). --chaos adds WeChat's signature probes
// (Config.V3Probes) on top.
const ChaosFaultsV3 = "v3_prepay:SYSTEMERROR:0.02,v3_prepay:DROP_AFTER_COMMIT:0.01," +
	"v3_query:SYSTEMERROR:0.02,v3_query:DELAY:0.002:7s," +
	"v3_close:SYSTEMERROR:0.05,v3_refund:DROP_AFTER_COMMIT:0.05,v3_refund:SYSTEMERROR:0.02," +
	"v3_refundquery:SYSTEMERROR:0.02,jscode2session:SYSTEMERROR:0.01,notify:DROP:0.01"

// ChaosV3Probes is the share of probe-signed v3 answers and notifies of
// --chaos with --v3.
const ChaosV3Probes = 0.01

// v3ProbeAPIs are the calls of the service whose answers a probe signs.
var v3ProbeAPIs = []string{"v3_prepay", "v3_query", "v3_close", "v3_refund", "v3_refundquery"}

// v3Faults maps the faults of a v3 run onto the v3 endpoints.
func v3Faults(fs []FaultSpec) []FaultSpec {
	out := make([]FaultSpec, len(fs))
	for i, f := range fs {
		if api, ok := wxsim.V3FaultAPI(f.API); ok {
			f.API = api
		}
		out[i] = f
	}
	return out
}

// checkV3 validates the APIv3 settings of a Config (withDefaults).
func (c *Config) checkV3() []string {
	var p []string
	if !c.V3 {
		if c.Verifier != "" || c.V3Probes != 0 {
			p = append(p, "verifier and v3 probes apply to an APIv3 run (--v3)")
		}
		for _, f := range c.Faults {
			if strings.HasPrefix(f.API, "v3_") {
				p = append(p, fmt.Sprintf("fault %s is on an APIv3 endpoint: add --v3", f))
				break
			}
		}
		return p
	}
	switch c.Verifier {
	case "":
		c.Verifier = VerifierCertificates
	case VerifierCertificates, VerifierPublicKey, VerifierBoth:
	default:
		p = append(p, fmt.Sprintf("verifier %q: use %s, %s or %s", c.Verifier, VerifierCertificates, VerifierPublicKey, VerifierBoth))
	}
	if c.V3Probes < 0 || c.V3Probes >= 1 {
		p = append(p, "v3 probes must be in [0, 1)")
	}
	c.Faults = v3Faults(c.Faults)
	return p
}

// setupV3 gives the simulator's merchant its APIv3 credentials — switched
// to the WeChat Pay public key first for the public_key and both
// verifiers — and writes them for the instances: the merchant private key
// and the APIv3 key as 0600 files in the work directory, the public key
// beside them. It returns the secrets the texts must not hold.
func (e *engine) setupV3() ([]string, error) {
	sim := e.sim.sim
	v := e.cfg.Verifier
	if v == VerifierPublicKey || v == VerifierBoth {
		share := 1.0
		if v == VerifierBoth {
			share = 0.5 // the middle of the switch-over: either key signs
		}
		if _, err := sim.SwitchToPublicKey(wxsim.DefaultMchID, share); err != nil {
			return nil, err
		}
	}
	c, err := sim.V3Credentials(wxsim.DefaultMchID)
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(e.workDir, "apiclient_key.pem")
	apiv3KeyFile := filepath.Join(e.workDir, "apiv3_key.txt")
	for _, f := range []struct{ path, data string }{{keyFile, c.PrivateKeyPEM}, {apiv3KeyFile, c.APIv3Key}} {
		if err := os.WriteFile(f.path, []byte(f.data), 0o600); err != nil {
			return nil, err
		}
	}
	e.v3Env = []string{
		"WXPAY_WECHAT_API_VERSION=v3",
		"WXPAY_WECHAT_CERT_SERIAL=" + c.CertSerial,
		"WXPAY_WECHAT_KEY_FILE=" + keyFile,
		"WXPAY_WECHAT_APIV3_KEY_FILE=" + apiv3KeyFile,
		"WXPAY_WECHAT_VERIFIER=" + v,
	}
	if v == VerifierPublicKey || v == VerifierBoth {
		pubFile := filepath.Join(e.workDir, "pub_key.pem")
		if err := os.WriteFile(pubFile, []byte(c.PublicKeyPEM), 0o644); err != nil {
			return nil, err
		}
		e.v3Env = append(e.v3Env, "WXPAY_WECHAT_PUBLIC_KEY_ID="+c.PublicKeyID, "WXPAY_WECHAT_PUBLIC_KEY_FILE="+pubFile)
	}
	e.logf("APIv3: merchant %s, certificate serial %s, verifier %s; its private key and APIv3 key are in %s (mode 0600)",
		c.MchID, c.CertSerial, v, e.workDir)
	canaries := []string{c.APIv3Key}
	// A line from the middle of the private key's base64: a key in a log
	// or an answer, whole or in part, holds it.
	if lines := strings.Split(strings.TrimSpace(c.PrivateKeyPEM), "\n"); len(lines) > 4 {
		canaries = append(canaries, strings.TrimSpace(lines[len(lines)/2]))
	}
	return canaries, nil
}

// startV3Probes makes WeChat's signature probe traffic while the chaos
// runs: a share of the service's v3 answers signed with a
// WECHATPAY/SIGNTEST/ signature (V3_PROBE faults, rolled with the other
// rate faults of their API) and of the v3 notifies preceded by a probe
// copy. Answers to the certificate download are left alone: an instance
// restarted after a kill downloads them before it is ready.
func (c *chaos) startV3Probes(rates map[string][]FaultSpec) error {
	p := c.e.cfg.V3Probes
	if !c.e.cfg.V3 || p <= 0 {
		return nil
	}
	for _, api := range v3ProbeAPIs {
		rates[api] = append(rates[api], FaultSpec{API: api, Kind: wxsim.FaultV3Probe, Rate: p})
	}
	return c.e.sim.sim.SetV3ProbeRate(0, p)
}

// sendPayNotify sends, once and now, the pay notify of a paid order again:
// v2 XML, or the v3 TRANSACTION.SUCCESS.
func (e *engine) sendPayNotify(ctx context.Context, no string) (wxsim.NotifyAttempt, error) {
	if e.cfg.V3 {
		return e.sim.sim.SendV3Notify(ctx, wxsim.DefaultMchID, no, "", nil)
	}
	return e.sim.sim.SendPayNotify(ctx, wxsim.DefaultMchID, no, nil)
}

// v3APIOf names an APIv3 path as wxsim's faults do (v3_prepay, v3_query …)
// so that the latency table has one row per endpoint, not per order.
func v3APIOf(path string) (string, bool) {
	switch path {
	case "/v3/refund/domestic/refunds":
		return "v3_refund", true
	case "/v3/bill/tradebill", "/v3/bill/fundflowbill":
		return "v3_bill", true
	case "/v3/billdownload/file":
		return "v3_billdownload", true
	case "/v3/certificates":
		return "v3_certificates", true
	}
	if rest, ok := strings.CutPrefix(path, "/v3/pay/transactions/"); ok {
		switch {
		case strings.HasSuffix(rest, "/close"):
			return "v3_close", true
		case strings.HasPrefix(rest, "id/"), strings.HasPrefix(rest, "out-trade-no/"):
			return "v3_query", true
		}
		return "v3_prepay", true
	}
	if strings.HasPrefix(path, "/v3/refund/domestic/refunds/") {
		return "v3_refundquery", true
	}
	if strings.HasPrefix(path, "/v3/") {
		return "v3_other", true
	}
	return "", false
}

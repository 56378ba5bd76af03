package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/internal/config"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

// v3Setup is an APIv3 client with its verifier, and what stops it.
type v3Setup struct {
	client  *apiv3.Client
	manager *apiv3.CertificateManager // nil in public-key mode
	stop    func()
}

// newV3 builds the APIv3 client of the configured merchant: the merchant
// API key and certificate serial, the APIv3 key, and the verifier the
// config names (platform certificates, downloaded now and refreshed by a
// CertificateManager this function starts; the WeChat Pay public key; or
// both during the migration). The caller must call stop.
func newV3(ctx context.Context, w *config.WeChat, notifyURL string, log *slog.Logger, now func() time.Time) (*v3Setup, error) {
	serial := w.CertSerial
	if serial == "" {
		if w.CertFile == "" {
			return nil, errors.New("config: wechat.cert_serial is empty and there is no wechat.cert_file to read it from")
		}
		cert, err := readCertificate(w.CertFile)
		if err != nil {
			return nil, fmt.Errorf("config: wechat.cert_file: %w", err)
		}
		serial = wxcrypto.CertificateSerial(cert)
	}
	cfg := apiv3.Config{MchID: w.MchID, AppID: w.AppID, CertSerial: serial, APIv3Key: w.APIv3Key, NotifyURL: notifyURL}
	if w.PrivateKeyPEM != "" {
		cfg.PrivateKey = w.PrivateKeyPEM
	} else {
		cfg.PrivateKeyFile = w.KeyFile
	}
	all := []apiv3.Option{apiv3.WithLogger(log)}
	if w.BaseURL != "" {
		all = append(all, apiv3.WithBaseURL(w.BaseURL))
	}
	if w.Failover {
		all = append(all, apiv3.WithFailover(""))
	}
	if now != nil {
		all = append(all, apiv3.WithClock(now))
	}
	boot, err := apiv3.NewClient(cfg, all...)
	if err != nil {
		return nil, err
	}
	s := &v3Setup{stop: func() {}}
	var pk *apiv3.PublicKeyVerifier
	if w.Verifier == config.VerifierPublicKey || w.Verifier == config.VerifierBoth {
		pemBytes := []byte(w.PublicKeyPEM)
		if len(pemBytes) == 0 {
			if pemBytes, err = os.ReadFile(w.PublicKeyFile); err != nil {
				return nil, fmt.Errorf("config: wechat.public_key_file: %w", err)
			}
		}
		if pk, err = apiv3.NewPublicKeyVerifier(w.PublicKeyID, pemBytes); err != nil {
			return nil, fmt.Errorf("config: wechat.public_key_file: %w", err)
		}
	}
	var verifier apiv3.Verifier = pk
	if w.Verifier != config.VerifierPublicKey {
		var mopts []apiv3.ManagerOption
		if w.PlatformCertFile != "" {
			cert, err := readCertificate(w.PlatformCertFile)
			if err != nil {
				return nil, fmt.Errorf("config: wechat.platform_cert_file: %w", err)
			}
			mopts = append(mopts, apiv3.WithTrustedCertificate(cert))
		}
		mgr, err := apiv3.NewCertificateManager(boot, w.APIv3Key, mopts...)
		if err != nil {
			return nil, err
		}
		if err := startManager(ctx, mgr, log); err != nil {
			return nil, fmt.Errorf("downloading the platform certificates: %w", err)
		}
		s.manager, s.stop = mgr, mgr.Stop
		verifier = mgr
		if pk != nil {
			verifier = &apiv3.MultiVerifier{PublicKey: pk, Certificates: mgr}
		}
	}
	if s.client, err = boot.WithVerifier(verifier); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// startBackoff are the pauses between the tries of the first certificate
// download: a service restarted while WeChat has a bad minute comes back
// instead of exiting.
var startBackoff = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}

// startManager starts the certificate manager, trying again after an
// answer whose outcome is unknown (a timeout, a 5xx, SYSTEM_ERROR) or that
// does not verify (a probe signature); a definite refusal (SIGN_ERROR, a
// wrong APIv3 key, a pin that does not match) fails at once.
func startManager(ctx context.Context, mgr *apiv3.CertificateManager, log *slog.Logger) error {
	for i := 0; ; i++ {
		err := mgr.Start(ctx)
		if err == nil || i == len(startBackoff) || !apiv3.OutcomeUnknown(err) && !errors.Is(err, apiv3.ErrResponseSignature) && !errors.Is(err, apiv3.ErrProbeSignature) {
			return err
		}
		log.Warn("wxpay: platform certificate download failed; trying again", slog.Duration("in", startBackoff[i]), slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(startBackoff[i]):
		}
	}
}

// simV3Credentials points the WeChat section at the embedded simulator's
// APIv3 credentials for its default merchant; in public-key or both mode
// the simulator first switches the merchant to a WeChat Pay public key
// (signing with it always, or half of the time).
func simV3Credentials(w *config.WeChat, sim *wxsim.Simulator) error {
	if w.Verifier == config.VerifierPublicKey || w.Verifier == config.VerifierBoth {
		share := 1.0
		if w.Verifier == config.VerifierBoth {
			share = 0.5
		}
		if _, err := sim.SwitchToPublicKey(w.MchID, share); err != nil {
			return err
		}
	}
	c, err := sim.V3Credentials(w.MchID)
	if err != nil {
		return err
	}
	useSimV3Credentials(w, &c)
	return nil
}

// useSimV3Credentials puts a simulator merchant's APIv3 credentials into
// the WeChat section, in memory (no key files).
func useSimV3Credentials(w *config.WeChat, c *wxsim.V3Credentials) {
	w.APIVersion = "v3"
	w.CertSerial, w.PrivateKeyPEM, w.APIv3Key = c.CertSerial, wxpay.Secret(c.PrivateKeyPEM), wxpay.Secret(c.APIv3Key)
	w.PublicKeyID, w.PublicKeyPEM = c.PublicKeyID, c.PublicKeyPEM
	w.CertFile, w.KeyFile, w.PublicKeyFile, w.PlatformCertFile = "", "", "", ""
}

package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/internal/config"
	"github.com/wxpay-go/wxpay/wxcrypto"
	"github.com/wxpay-go/wxpay/wxsim"
)

func init() {
	extraCommands = append(extraCommands, newCertsCmd)
}

// expiryWarning is how close to its expiry a certificate is flagged.
const expiryWarning = 30 * 24 * time.Hour

func newCertsCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs download|show",
		Short: "APIv3 platform certificates: download and check them, or show certificate and key files",
		Example: `  wxpay certs download --config wxpay.toml --out certs/
  wxpay certs download --mchid 1900009191 --cert-file apiclient_cert.pem --key-file apiclient_key.pem \
      --apiv3-key @apiv3_key.txt --trust wechatpay_5157F09EFDC096DE15EBE81A47057A7232F1B8E1.pem
  wxpay certs download --sim --base-url http://127.0.0.1:8090    # a running ` + "`wxpay sim`" + `
  wxpay certs show apiclient_cert.pem certs/wechatpay_*.pem pub_key.pem`,
	}
	cmd.AddCommand(newCertsDownloadCmd(s), newCertsShowCmd(s))
	return cmd
}

// v3Flags identify an APIv3 merchant: the config's wechat section, the
// simulator's default merchant (--sim), and flags over both.
type v3Flags struct {
	opsFlags
	mchID, serial, certFile, keyFile, apiv3Key string
	// platformCertFile is the config's wechat.platform_cert_file, once
	// merchant has run.
	platformCertFile string
}

func (f *v3Flags) add(cmd *cobra.Command) {
	f.opsFlags.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.mchID, "mchid", "", "the merchant id (default: wechat.mch_id)")
	fl.StringVar(&f.serial, "serial", "", "the serial of the merchant API certificate (default: wechat.cert_serial, or read from --cert-file)")
	fl.StringVar(&f.certFile, "cert-file", "", "the merchant API certificate (apiclient_cert.pem), to read its serial")
	fl.StringVar(&f.keyFile, "key-file", "", "the merchant API private key (apiclient_key.pem, mode 0600; default: wechat.key_file)")
	fl.StringVar(&f.apiv3Key, "apiv3-key", "", "the APIv3 key, or @FILE (default: wechat.apiv3_key or apiv3_key_file)")
}

// merchant resolves the merchant's APIv3 identity and WeChat's base URL.
func (f *v3Flags) merchant(ctx context.Context) (apiv3.Config, string, error) {
	c, err := config.Load(f.config, nil)
	if err != nil {
		return apiv3.Config{}, "", err
	}
	w := c.WeChat
	f.platformCertFile = w.PlatformCertFile
	base := f.baseURL
	if base == "" {
		base = w.BaseURL
	}
	if f.sim {
		if f.baseURL == "" {
			base = "http://127.0.0.1:8090"
		}
		id := f.mchID
		if id == "" {
			id = wxsim.DefaultMchID
		}
		creds, err := simCredentials(ctx, base, id)
		if err != nil {
			return apiv3.Config{}, "", err
		}
		w.MchID = creds.MchID
		useSimV3Credentials(&w, creds)
	}
	if f.mchID != "" {
		w.MchID = f.mchID
	}
	if f.certFile != "" {
		w.CertFile, w.CertSerial = f.certFile, ""
	}
	if f.serial != "" {
		w.CertSerial = f.serial
	}
	if f.keyFile != "" {
		w.KeyFile, w.PrivateKeyPEM = f.keyFile, ""
	}
	if f.apiv3Key != "" {
		if w.APIv3Key, err = readSecretFlag("--apiv3-key", f.apiv3Key); err != nil {
			return apiv3.Config{}, "", err
		}
	}
	var missing []string
	if w.MchID == "" {
		missing = append(missing, "--mchid (or wechat.mch_id)")
	}
	if w.CertSerial == "" && w.CertFile == "" {
		missing = append(missing, "--serial or --cert-file (or wechat.cert_serial / cert_file)")
	}
	if w.PrivateKeyPEM == "" && w.KeyFile == "" {
		missing = append(missing, "--key-file (or wechat.key_file)")
	}
	if w.APIv3Key == "" {
		missing = append(missing, "--apiv3-key (or wechat.apiv3_key / apiv3_key_file)")
	}
	if len(missing) > 0 {
		return apiv3.Config{}, "", usageError{fmt.Errorf("the merchant's APIv3 identity is incomplete: give %s, or --config, or --sim", strings.Join(missing, ", "))}
	}
	if w.CertSerial == "" {
		cert, err := readCertificate(w.CertFile)
		if err != nil {
			return apiv3.Config{}, "", err
		}
		w.CertSerial = wxcrypto.CertificateSerial(cert)
	}
	if strings.HasPrefix(w.CertSerial, apiv3.PublicKeyIDPrefix) || !wxcrypto.IsHexSerial(w.CertSerial) {
		return apiv3.Config{}, "", usageError{fmt.Errorf("--serial %q is not a certificate serial: it is the hex serial of apiclient_cert.pem (not a PUB_KEY_ID_ nor a platform certificate's)", w.CertSerial)}
	}
	if w.PrivateKeyPEM == "" {
		if w.PrivateKeyPEM, err = readPrivateKeyFile(w.KeyFile); err != nil {
			return apiv3.Config{}, "", err
		}
	}
	if len(w.APIv3Key) != 32 {
		return apiv3.Config{}, "", usageError{fmt.Errorf("the APIv3 key has %d characters, not 32: is it the APIv3 key (APIv3密钥)?", len(w.APIv3Key))}
	}
	return apiv3.Config{MchID: w.MchID, AppID: w.AppID, CertSerial: w.CertSerial, PrivateKey: w.PrivateKeyPEM, APIv3Key: w.APIv3Key}, base, nil
}

// readSecretFlag reads a secret flag: the value, or @FILE (mode 0600).
func readSecretFlag(name, v string) (wxpay.Secret, error) {
	if f, ok := strings.CutPrefix(v, "@"); ok {
		s, err := readSecretFile(f)
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return s, nil
	}
	return wxpay.Secret(v), nil
}

// readPrivateKeyFile reads the merchant API private key from a file only
// its owner can read, and checks that it is one.
func readPrivateKeyFile(path string) (wxpay.Secret, error) {
	pemText, err := readSecretFile(path)
	if err != nil {
		return "", err
	}
	if _, err := wxcrypto.ParsePrivateKey([]byte(pemText.Reveal())); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return pemText, nil
}

func readCertificate(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cert, err := wxcrypto.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, nil
}

// simCredentials asks a running simulator's control API for a
// merchant's APIv3 credentials (GET /sim/v1/v3/merchants/{mch_id}).
func simCredentials(ctx context.Context, base, mchID string) (*wxsim.V3Credentials, error) {
	u := strings.TrimRight(base, "/") + "/sim/v1/v3/merchants/" + url.PathEscape(mchID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("--sim: asking the simulator for merchant %s's credentials: %w", mchID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("--sim: GET %s: HTTP %d: is --base-url a `wxpay sim`? %s", u, resp.StatusCode, clip(string(body), 200))
	}
	var c wxsim.V3Credentials
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("--sim: GET %s: %w", u, err)
	}
	if c.PrivateKeyPEM == "" {
		return nil, fmt.Errorf("--sim: the simulator does not hold merchant %s's private key (its certificate was configured): give --key-file", mchID)
	}
	return &c, nil
}

func newCertsDownloadCmd(s streams) *cobra.Command {
	var f v3Flags
	var trust, out string
	cmd := &cobra.Command{
		Use:   "download [--config F] [--mchid M --serial S|--cert-file F --key-file F --apiv3-key K|@FILE] [--trust F] [--out DIR]",
		Short: "Download the platform certificates (GET /v3/certificates), decrypt and verify them",
		Long: `download fetches the WeChat Pay platform certificates of an APIv3 merchant
(GET /v3/certificates, signed with the merchant API private key), decrypts each
with the APIv3 key (AEAD_AES_256_GCM) and checks them as the service does: RSA
keys of 2048 bits or more, serials matching, not expired, not the merchant's own
certificate, and the answer signed by a trusted key.

Trust: with --trust FILE (a platform certificate obtained out of band, e.g. from
WeChat's certificate tool or an earlier download; default: the config's
wechat.platform_cert_file) the answer must be signed by it. Without it the answer is verified with a certificate it contains (trust on
first use): only the APIv3 key vouches for the certificates then.

The merchant comes from --config (its wechat section, WXPAY_… variables
included), from a running simulator's default merchant with --sim, and from the
flags, which win. It prints each certificate's serial, validity in China time
and days left; --out DIR writes them as DIR/wechatpay_<SERIAL>.pem.`,
		Example: `  wxpay certs download --config wxpay.toml --out certs/
  wxpay certs download --mchid 1900009191 --cert-file apiclient_cert.pem --key-file apiclient_key.pem \
      --apiv3-key @apiv3_key.txt --trust certs/wechatpay_5157F09EFDC096DE15EBE81A47057A7232F1B8E1.pem
  wxpay certs download --sim --base-url http://127.0.0.1:8090 --out certs/`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, base, err := f.merchant(ctx)
			if err != nil {
				return err
			}
			var pin *x509.Certificate
			var mopts []apiv3.ManagerOption
			if trust == "" && f.platformCertFile != "" {
				trust = f.platformCertFile
				fmt.Fprintf(s.err, "trust: the config's wechat.platform_cert_file %s\n", trust)
			}
			if trust != "" {
				if pin, err = readCertificate(trust); err != nil {
					return fmt.Errorf("--trust: %w", err)
				}
				if wxcrypto.SameSerial(wxcrypto.CertificateSerial(pin), cfg.CertSerial) || isMerchantID(pin.Subject.CommonName) {
					return fmt.Errorf("--trust %s is a merchant API certificate (serial %s, CN %s), not a WeChat Pay platform certificate: it cannot vouch for WeChat's signatures",
						trust, wxcrypto.CertificateSerial(pin), pin.Subject.CommonName)
				}
				mopts = append(mopts, apiv3.WithTrustedCertificate(pin))
			}
			var opts []apiv3.Option
			if base != "" {
				opts = append(opts, apiv3.WithBaseURL(base))
			}
			boot, err := apiv3.NewClient(cfg, opts...)
			if err != nil {
				return err
			}
			mgr, err := apiv3.NewCertificateManager(boot, cfg.APIv3Key, mopts...)
			if err != nil {
				return explainCertsDownload(err, cfg, trust, pin)
			}
			if err := mgr.Refresh(ctx); err != nil {
				return explainCertsDownload(err, cfg, trust, pin)
			}
			if pin != nil {
				fmt.Fprintf(s.err, "trust: the answer is signed by the certificate of --trust %s (serial %s)\n", trust, wxcrypto.CertificateSerial(pin))
			} else {
				fmt.Fprintln(s.err, "trust on first use: no --trust certificate, so the answer was verified with a certificate it holds and only the APIv3 key vouches for them; pin one fetched out of band with --trust FILE")
			}
			certs := mgr.Certificates()
			slices.SortFunc(certs, func(a, b *x509.Certificate) int {
				if c := a.NotBefore.Compare(b.NotBefore); c != 0 {
					return c
				}
				return strings.Compare(wxcrypto.CertificateSerial(a), wxcrypto.CertificateSerial(b))
			})
			now := time.Now()
			tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SERIAL\tEFFECTIVE (China time)\tEXPIRES (China time)\tDAYS LEFT")
			for _, c := range certs {
				note := ""
				if pin != nil && c.Equal(pin) {
					note += "  pinned"
				}
				if c.NotAfter.Sub(now) < expiryWarning {
					note += "  EXPIRES SOON: get its successor"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%9d%s\n", wxcrypto.CertificateSerial(c), chinaTime(c.NotBefore), chinaTime(c.NotAfter),
					daysLeft(c.NotAfter, now), note)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if out == "" {
				return nil
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			for _, c := range certs {
				path := filepath.Join(out, "wechatpay_"+wxcrypto.CertificateSerial(c)+".pem")
				if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(s.out, "wrote %s\n", path)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&trust, "trust", "", "a platform certificate (PEM) obtained out of band that must sign the answer (default: wechat.platform_cert_file, else trust on first use)")
	cmd.Flags().StringVar(&out, "out", "", "write each certificate to DIR/wechatpay_<SERIAL>.pem")
	return cmd
}

// explainCertsDownload turns a failed download into what to check.
func explainCertsDownload(err error, cfg apiv3.Config, trust string, pin *x509.Certificate) error {
	m := cfg.MchID
	switch {
	case errors.Is(err, wxcrypto.ErrAEADAuth):
		return fmt.Errorf("the platform certificates did not decrypt with the APIv3 key: is it merchant %s's APIv3 key (APIv3密钥), not the v2 API key? (%v)", m, err)
	case errors.Is(err, apiv3.ErrSignError):
		return fmt.Errorf("WeChat Pay refused the request's signature (401 SIGN_ERROR): check that the private key is merchant %s's apiclient_key.pem, that serial %s is its apiclient_cert.pem's, and this host's clock (%v)", m, cfg.CertSerial, err)
	case errors.Is(err, apiv3.ErrMerchantCertificate):
		return fmt.Errorf("the merchant's own API certificate is where a platform certificate should be: %v", err)
	case errors.Is(err, apiv3.ErrUntrustedCertificates) && pin != nil:
		return fmt.Errorf("refused: the certificates are not signed by the --trust certificate %s (serial %s): the pin is wrong or outdated, or the answer is not WeChat's (%v)", trust, wxcrypto.CertificateSerial(pin), err)
	case errors.Is(err, apiv3.ErrUntrustedCertificates):
		return fmt.Errorf("refused: the certificate download does not verify (%v)", err)
	case errors.Is(err, apiv3.ErrResourceNotExists):
		return fmt.Errorf("merchant %s has no platform certificates (404 RESOURCE_NOT_EXISTS): it uses the WeChat Pay public key (PUB_KEY_ID_…) instead; download pub_key.pem from the merchant platform and set verifier = \"public_key\" (%v)", m, err)
	case errors.Is(err, apiv3.ErrMchNotExists):
		return fmt.Errorf("WeChat Pay does not know merchant %s (%v)", m, err)
	case errors.Is(err, apiv3.ErrResponseSignature):
		return fmt.Errorf("the answer's signature does not verify, the certificates are not taken (%v)", err)
	}
	return fmt.Errorf("downloading the platform certificates: %w", err)
}

// isMerchantID reports whether a certificate's CN is a merchant id: the
// merchant API certificate (apiclient_cert.pem) is issued to one.
func isMerchantID(cn string) bool {
	if len(cn) < 6 || len(cn) > 12 {
		return false
	}
	for _, r := range cn {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func chinaTime(t time.Time) string { return t.In(wxpay.China).Format("2006-01-02 15:04:05") }

// daysLeft is the whole days until t (negative once past).
func daysLeft(t, now time.Time) int {
	d := t.Sub(now)
	if d < 0 {
		return -int((-d).Hours() / 24)
	}
	return int(d.Hours() / 24)
}

func newCertsShowCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show FILE...",
		Short: "Show certificates and public keys (PEM): serial, names, validity, key, and what the file is for",
		Long: `show reads certificate and public-key files offline — a platform certificate
(wechatpay_<SERIAL>.pem), the merchant API certificate (apiclient_cert.pem), the
WeChat Pay public key (pub_key.pem) — and prints for each certificate its serial
as WeChat writes it, subject, issuer, validity in China time with the days left
(a warning under 30 days), the RSA key size and what it is for. A file may hold
several PEM blocks. Private keys are never printed: a private key file is named
as such and refused (exit 1).`,
		Example: `  wxpay certs show certs/wechatpay_*.pem
  wxpay certs show apiclient_cert.pem pub_key.pem`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("certs show takes one or more PEM files")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var shown []shownCert
			var problems []string
			now := time.Now()
			for i, path := range args {
				if i > 0 {
					fmt.Fprintln(s.out)
				}
				certs, probs := showFile(s.out, path, now, shown)
				shown = append(shown, certs...)
				problems = append(problems, probs...)
			}
			if len(problems) > 0 {
				return &exitError{code: 1, msg: "wxpay: certs show: " + strings.Join(problems, "; ")}
			}
			return nil
		},
	}
	return cmd
}

// shownCert is a certificate already shown, for matching private keys.
type shownCert struct {
	path string
	cert *x509.Certificate
}

// showFile prints what path holds and returns its certificates and what
// was refused or unreadable.
func showFile(w io.Writer, path string, now time.Time, before []shownCert) ([]shownCert, []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(w, "%s: %v\n", path, err)
		return nil, []string{err.Error()}
	}
	type item struct {
		typ string
		der []byte
	}
	var items []item
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		items = append(items, item{b.Type, b.Bytes})
	}
	if len(items) == 0 {
		// DER: a .cer certificate, a public or a private key.
		switch {
		case parses(x509.ParseCertificate, data):
			items = append(items, item{"CERTIFICATE", data})
		case parses(x509.ParsePKIXPublicKey, data):
			items = append(items, item{"PUBLIC KEY", data})
		case parses(x509.ParsePKCS8PrivateKey, data):
			items = append(items, item{"PRIVATE KEY", data})
		case parses(x509.ParsePKCS1PrivateKey, data):
			items = append(items, item{"RSA PRIVATE KEY", data})
		default:
			fmt.Fprintf(w, "%s: no PEM block, and not a DER certificate or key\n", path)
			return nil, []string{path + " holds no certificate or key"}
		}
	}
	var certs []shownCert
	var problems []string
	for i, it := range items {
		label := path
		if len(items) > 1 {
			label = fmt.Sprintf("%s (block %d of %d)", path, i+1, len(items))
		}
		switch {
		case it.typ == "CERTIFICATE":
			c, err := x509.ParseCertificate(it.der)
			if err != nil {
				fmt.Fprintf(w, "%s: a CERTIFICATE block that does not parse: %v\n", label, err)
				problems = append(problems, label+": bad certificate")
				continue
			}
			showCertificate(w, label, c, now)
			certs = append(certs, shownCert{path, c})
		case it.typ == "PUBLIC KEY" || it.typ == "RSA PUBLIC KEY":
			if err := showPublicKey(w, label, it.typ, it.der); err != nil {
				problems = append(problems, label+": "+err.Error())
			}
		case strings.Contains(it.typ, "PRIVATE KEY"):
			showPrivateKey(w, label, path, it.typ, it.der, append(slices.Clone(before), certs...))
			problems = append(problems, label+" holds a private key: not shown")
		default:
			fmt.Fprintf(w, "%s: a %q PEM block: not a certificate or public key\n", label, it.typ)
			problems = append(problems, fmt.Sprintf("%s: unexpected %q block", label, it.typ))
		}
	}
	return certs, problems
}

func parses[T any](parse func([]byte) (T, error), der []byte) bool {
	_, err := parse(der)
	return err == nil
}

func showCertificate(w io.Writer, label string, c *x509.Certificate, now time.Time) {
	serial := wxcrypto.CertificateSerial(c)
	fmt.Fprintf(w, "%s: certificate\n", label)
	row := func(k, v string) { fmt.Fprintf(w, "  %-9s %s\n", k, v) }
	row("serial", serial)
	row("subject", c.Subject.String())
	row("issuer", c.Issuer.String())
	validity := fmt.Sprintf("%s → %s China time", chinaTime(c.NotBefore), chinaTime(c.NotAfter))
	left := daysLeft(c.NotAfter, now)
	switch {
	case now.After(c.NotAfter):
		row("valid", fmt.Sprintf("%s: EXPIRED %d day(s) ago", validity, -left))
	case now.Before(c.NotBefore):
		row("valid", fmt.Sprintf("%s: NOT YET VALID (from %s)", validity, chinaTime(c.NotBefore)))
	default:
		row("valid", fmt.Sprintf("%s, %d day(s) left", validity, left))
	}
	row("key", keyDescription(c.PublicKey))
	if isMerchantID(c.Subject.CommonName) {
		row("what", fmt.Sprintf("a merchant API certificate (apiclient_cert.pem) of merchant %s: its serial is the serial_no of the requests (wechat.cert_serial)", c.Subject.CommonName))
		row("WARNING", "not a platform certificate: do not use it to verify WeChat's signatures (platform_cert_file, --trust); use `wxpay certs download` or the WeChat Pay public key")
	} else {
		row("what", fmt.Sprintf("not a merchant API certificate (its CN is not a merchant id): a WeChat Pay platform certificate if it came from GET /v3/certificates (wxpay certs download); it verifies the answers and notifies whose Wechatpay-Serial is %s", serial))
	}
	switch {
	case now.After(c.NotAfter):
		row("WARNING", "expired: it verifies nothing any more")
	case c.NotAfter.Sub(now) < expiryWarning:
		row("WARNING", fmt.Sprintf("expires in %d day(s): get its successor now", left))
	}
	if rk, ok := c.PublicKey.(*rsa.PublicKey); !ok || rk.N.BitLen() < 2048 {
		row("WARNING", "WeChat Pay keys are RSA of 2048 bits or more: the SDK refuses this one")
	}
}

func showPublicKey(w io.Writer, label, typ string, der []byte) error {
	var key any
	var err error
	if typ == "RSA PUBLIC KEY" {
		key, err = x509.ParsePKCS1PublicKey(der)
	} else {
		key, err = x509.ParsePKIXPublicKey(der)
	}
	if err != nil {
		fmt.Fprintf(w, "%s: a %s block that does not parse: %v\n", label, typ, err)
		return errors.New("bad public key")
	}
	spki := der
	if typ == "RSA PUBLIC KEY" {
		if spki, err = x509.MarshalPKIXPublicKey(key); err != nil {
			return err
		}
	}
	sum := sha256.Sum256(spki)
	fmt.Fprintf(w, "%s: public key\n", label)
	row := func(k, v string) { fmt.Fprintf(w, "  %-9s %s\n", k, v) }
	row("key", keyDescription(key))
	row("sha-256", colonHex(sum[:]))
	row("what", "if it is the WeChat Pay public key (pub_key.pem), its id is the PUB_KEY_ID_… shown next to it on the merchant platform (API安全 → 微信支付公钥): set wechat.public_key_id to it (the prefix included) and wechat.public_key_file to this file")
	if rk, ok := key.(*rsa.PublicKey); !ok || rk.N.BitLen() < 2048 {
		row("WARNING", "WeChat Pay keys are RSA of 2048 bits or more: the SDK refuses this one")
	}
	return nil
}

// showPrivateKey names a private key without printing any of it, and says
// which certificate shown before it belongs to.
func showPrivateKey(w io.Writer, label, path, typ string, der []byte, certs []shownCert) {
	fmt.Fprintf(w, "%s: a private key (%s): NOT SHOWN\n", label, typ)
	row := func(k, v string) { fmt.Fprintf(w, "  %-9s %s\n", k, v) }
	var pub crypto.PublicKey
	switch typ {
	case "PRIVATE KEY":
		if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
			if sg, ok := k.(crypto.Signer); ok {
				pub = sg.Public()
			}
		}
	case "RSA PRIVATE KEY":
		if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
			pub = k.Public()
		}
	case "EC PRIVATE KEY":
		if k, err := x509.ParseECPrivateKey(der); err == nil {
			pub = k.Public()
		}
	case "ENCRYPTED PRIVATE KEY":
		row("what", "an encrypted private key: the SDK needs it decrypted (openssl pkcs8 -in F -out apiclient_key.pem)")
	}
	if pub != nil {
		row("key", keyDescription(pub))
		row("what", "if it is the merchant API private key (apiclient_key.pem), it signs every APIv3 request: keep it mode 0600, never share or print it")
		for _, c := range certs {
			if eq, ok := c.cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(pub) {
				row("matches", fmt.Sprintf("the certificate %s in %s", wxcrypto.CertificateSerial(c.cert), c.path))
			}
		}
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		row("WARNING", fmt.Sprintf("readable by group or others (mode %v): chmod 600 %s", st.Mode().Perm(), path))
	}
}

func keyDescription(key any) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", key)
}

func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/wxcrypto"
)

// keyFlag is the --key of the signing tools: the value, or @FILE to read it
// from a file (so that it stays out of the shell history).
func readKey(v string) (wxpay.Secret, error) {
	if v == "" {
		return "", usageError{errors.New("--key is required (the 32-character API key, or @FILE)")}
	}
	if f, ok := strings.CutPrefix(v, "@"); ok {
		return readSecretFile(f)
	}
	return wxpay.Secret(v), nil
}

func signType(v string) (wxpay.SignType, error) {
	t := wxpay.SignType(strings.ToUpper(v))
	if t == "" {
		t = wxpay.SignTypeMD5
	}
	if !t.Valid() {
		return "", usageError{fmt.Errorf("--type must be MD5 or HMAC-SHA256, not %q", v)}
	}
	return t, nil
}

// readFields takes k=v arguments, or an XML message on stdin when there are none.
func readFields(in io.Reader, args []string) ([]wxcrypto.Field, error) {
	if len(args) > 0 {
		m := map[string]string{}
		for _, a := range args {
			k, v, ok := strings.Cut(a, "=")
			if !ok || k == "" {
				return nil, usageError{fmt.Errorf("argument %q is not key=value", a)}
			}
			if _, dup := m[k]; dup {
				return nil, usageError{fmt.Errorf("field %q given twice", k)}
			}
			m[k] = v
		}
		return wxcrypto.FieldsFromMap(m), nil
	}
	body, err := io.ReadAll(io.LimitReader(in, apiv2.MaxMessageSize+1))
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, usageError{errors.New("give key=value arguments, or an XML message on stdin")}
	}
	return apiv2.ParseMessage(body)
}

func newSignCmd(s streams) *cobra.Command {
	var key, typ string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "sign --key KEY [--type MD5|HMAC-SHA256] [key=value ...]",
		Short: "Compute a v2 signature over fields (arguments, or an XML message on stdin)",
		Example: `  wxpay sign --key 192006250b4c09247ec02edce69f6a2d appid=wxd930ea5d5a258f4f mch_id=10000100 \
      device_info=1000 body=test nonce_str=ibuaiVcKdpRxkhJA
  9A0A8659F005D6984697E2CA0A9CF3B7
  wxpay sign -v --key @api_key.txt --type HMAC-SHA256 < request.xml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := readKey(key)
			if err != nil {
				return err
			}
			t, err := signType(typ)
			if err != nil {
				return err
			}
			fields, err := readFields(s.in, args)
			if err != nil {
				return err
			}
			sig, err := wxcrypto.Sign(t, k.Reveal(), fields)
			if err != nil {
				return err
			}
			if verbose {
				fmt.Fprintf(s.out, "sign type:     %s\nsigned string: %s\n", t, wxcrypto.CanonicalString(fields))
			}
			fmt.Fprintln(s.out, sig)
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the API key, or @FILE")
	cmd.Flags().StringVar(&typ, "type", "MD5", "MD5 or HMAC-SHA256")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also print the signed string (key redacted)")
	return cmd
}

func newVerifyCmd(s streams) *cobra.Command {
	var key, typ, appSecret string
	cmd := &cobra.Command{
		Use:   "verify --key KEY [--type MD5|HMAC-SHA256] < body.xml",
		Short: "Check the signature of a notify or a response; explain a failure",
		Long: `verify reads a v2 XML message (a pay notify, a WeChat response) on stdin and
checks its sign with the key. It exits 0 and prints "valid", or exits 1 with a
diagnosis: the signed string (key redacted), the key's length and
fingerprint, and the likely mix-up (MD5 vs HMAC-SHA256, the AppSecret used as
the API key, a lower-case signature...). The sign type defaults to the
message's own sign_type field, else MD5.`,
		Example: `  wxpay verify --key @api_key.txt < notify.xml
  wxpay verify --key $KEY --app-secret $APPSECRET < notify.xml   # also test the AppSecret mix-up`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := readKey(key)
			if err != nil {
				return err
			}
			fields, err := readFields(s.in, nil)
			if err != nil {
				return fmt.Errorf("reading the message: %w", err)
			}
			t := wxpay.SignType(lookupField(fields, "sign_type"))
			if cmd.Flags().Changed("type") || t == "" {
				if t, err = signType(typ); err != nil {
					return err
				}
			}
			sign := lookupField(fields, "sign")
			if sign != "" && t.Valid() && wxcrypto.Verify(t, k.Reveal(), fields, sign) {
				fmt.Fprintf(s.out, "valid (%s)\n", t)
				return nil
			}
			others := map[string]string{}
			if appSecret != "" {
				others["AppSecret"] = appSecret
			}
			d := wxcrypto.Diagnose(fields, sign, wxcrypto.DiagnoseOptions{Key: k.Reveal(), SignType: t, OtherSecrets: others})
			msg := "invalid: the signature does not verify"
			if sign == "" {
				msg = "invalid: the message has no sign field"
			}
			return &exitError{code: 1, msg: msg + "\n" + strings.TrimRight(d.String(), "\n")}
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the API key, or @FILE")
	cmd.Flags().StringVar(&typ, "type", "MD5", "MD5 or HMAC-SHA256 (default: the message's sign_type, else MD5)")
	cmd.Flags().StringVar(&appSecret, "app-secret", "", "the mini program's AppSecret, to detect it used as the key")
	return cmd
}

func lookupField(fields []wxcrypto.Field, name string) string {
	for _, f := range fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

func newPaySignCmd(s streams) *cobra.Command {
	var appID, key, keyFile, prepayID, typ, nonce string
	var ts int64
	var v3, verbose bool
	cmd := &cobra.Command{
		Use:   "paysign --appid APPID (--key KEY [--type MD5|HMAC-SHA256] | --v3 --key-file apiclient_key.pem) --prepay-id ID [--timestamp T --nonce N]",
		Short: "Sign the mini-program pay parameters (wx.requestPayment) for a prepay id, v2 or APIv3",
		Long: `paysign prints the five parameters of wx.requestPayment for a prepay id, as
JSON, and the signed string on stderr.

v2 (the default): paySign is the MD5 or HMAC-SHA256 signature with the API key
over appId, nonceStr, package, signType and timeStamp.

--v3: paySign is SHA256withRSA by the merchant API private key (--key-file,
apiclient_key.pem, mode 0600) over "appId\ntimeStamp\nnonceStr\nprepay_id=…\n"
(protocol.md §13.5), base64, with signType RSA; -v prints the signed string.`,
		Example: `  wxpay paysign --appid wxd678efh567hg6787 --key qazwsxedcrfvtgbyhnujmikolp111111 \
      --prepay-id wx2017033010242291fcfe0db70013231072 --timestamp 1490840662 --nonce 5K8264ILTKCH16CQ2502SI8ZNMTM67VS
  wxpay paysign --v3 -v --appid wxd678efh567hg6787 --key-file apiclient_key.pem \
      --prepay-id wx2017033010242291fcfe0db70013231072 --timestamp 1490840662 --nonce 5K8264ILTKCH16CQ2502SI8ZNMTM67VS`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if v3 {
				return paySignV3(cmd, s, appID, keyFile, prepayID, ts, nonce, verbose)
			}
			if keyFile != "" {
				return usageError{errors.New("--key-file is the APIv3 merchant private key: add --v3 (v2 signs with --key)")}
			}
			k, err := readKey(key)
			if err != nil {
				return err
			}
			t, err := signType(typ)
			if err != nil {
				return err
			}
			if appID == "" || prepayID == "" {
				return usageError{errors.New("--appid and --prepay-id are required")}
			}
			if ts == 0 {
				ts = time.Now().Unix()
			}
			if nonce == "" {
				nonce = wxcrypto.NewNonce()
			}
			p, err := apiv2.SignPayParams(appID, k, t, prepayID, strconv.FormatInt(ts, 10), nonce)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(s.out)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			if err := enc.Encode(p); err != nil {
				return err
			}
			fmt.Fprintf(s.err, "signed string: %s\n", p.CanonicalString())
			return nil
		},
	}
	cmd.Flags().StringVar(&appID, "appid", "", "the mini program's AppID")
	cmd.Flags().StringVar(&key, "key", "", "v2: the API key, or @FILE")
	cmd.Flags().StringVar(&prepayID, "prepay-id", "", "the prepay_id from unifiedorder (v2) or the JSAPI order (v3)")
	cmd.Flags().StringVar(&typ, "type", "MD5", "v2: MD5 or HMAC-SHA256 (as in unifiedorder)")
	cmd.Flags().Int64Var(&ts, "timestamp", 0, "Unix seconds (default: now)")
	cmd.Flags().StringVar(&nonce, "nonce", "", "nonceStr (default: random)")
	cmd.Flags().BoolVar(&v3, "v3", false, "APIv3: signType RSA, signed with --key-file")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "v3: the merchant API private key (apiclient_key.pem, mode 0600)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "v3: print the signed string on stderr (v2 always does)")
	return cmd
}

// paySignV3 signs APIv3 pay parameters (protocol.md §13.5).
func paySignV3(cmd *cobra.Command, s streams, appID, keyFile, prepayID string, ts int64, nonce string, verbose bool) error {
	f := cmd.Flags()
	if f.Changed("key") || f.Changed("type") {
		return usageError{errors.New("--v3 signs with the merchant private key (--key-file) and signType RSA: --key and --type are v2's")}
	}
	if appID == "" || prepayID == "" || keyFile == "" {
		return usageError{errors.New("--v3 needs --appid, --prepay-id and --key-file")}
	}
	pemText, err := readPrivateKeyFile(keyFile)
	if err != nil {
		return err
	}
	key, err := wxcrypto.ParsePrivateKey([]byte(pemText.Reveal()))
	if err != nil {
		return fmt.Errorf("%s: %w", keyFile, err)
	}
	if ts == 0 {
		ts = time.Now().Unix()
	}
	if nonce == "" {
		nonce = wxcrypto.NewNonce()
	}
	prepayID = strings.TrimPrefix(prepayID, "prepay_id=")
	p, err := apiv3.SignPayParams(key, appID, prepayID, strconv.FormatInt(ts, 10), nonce)
	if err != nil {
		return err
	}
	if err := printJSON(s.out, p); err != nil {
		return err
	}
	if verbose {
		fmt.Fprintf(s.err, "signed string: %q\n", p.SignedString())
	}
	return nil
}

func newDecryptRefundCmd(s streams) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:     "decrypt-refund --key KEY < notify.xml",
		Short:   "Decrypt the req_info of a refund notify (AES-256-ECB with MD5 of the API key)",
		Example: `  wxpay decrypt-refund --key @api_key.txt < refund_notify.xml`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := readKey(key)
			if err != nil {
				return err
			}
			fields, err := readFields(s.in, nil)
			if err != nil {
				return fmt.Errorf("reading the notify: %w", err)
			}
			reqInfo := lookupField(fields, "req_info")
			if reqInfo == "" {
				return errors.New("the message has no req_info field: is it a refund notify?")
			}
			plain, err := wxcrypto.DecryptReqInfo(k.Reveal(), reqInfo)
			if err != nil {
				return fmt.Errorf("%w (is --key the API key of mch_id %s?)", err, lookupField(fields, "mch_id"))
			}
			fmt.Fprintln(s.out, string(plain))
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the API key, or @FILE")
	return cmd
}

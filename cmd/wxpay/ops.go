package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"

	"github.com/wxpay-go/wxpay"
	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/apiv3"
	"github.com/wxpay-go/wxpay/internal/config"
	"github.com/wxpay-go/wxpay/wxsim"
)

func init() {
	extraCommands = append(extraCommands, newOrderCmd, newRefundCmd, newBillCmd, newQRCmd)
}

// opsFlags are what the operator's tools share: the merchant config and
// where WeChat is.
type opsFlags struct {
	config  string
	baseURL string
	sim     bool
	v3      bool
}

func (f *opsFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.config, "config", "", "the merchant config (TOML; WXPAY_… variables override it)")
	cmd.Flags().StringVar(&f.baseURL, "base-url", "", "WeChat Pay's base URL (default https://api.mch.weixin.qq.com; e.g. the simulator's http://127.0.0.1:8090)")
	cmd.Flags().BoolVar(&f.sim, "sim", false, "use the simulator's default merchant (with --base-url of a running `wxpay sim`)")
	cmd.Flags().BoolVar(&f.v3, "v3", false, "with --sim: use APIv3 (otherwise the config's wechat.api_version decides)")
}

// v3Client returns an APIv3 client, with its platform certificates
// downloaded, when the merchant uses APIv3 (wechat.api_version = "v3", or
// --sim --v3); nil for a v2 merchant. The caller stops it.
func (f *opsFlags) v3Client(ctx context.Context) (*v3Setup, error) {
	if f.v3 && !f.sim {
		return nil, usageError{errors.New("--v3 goes with --sim; for your merchant set wechat.api_version = \"v3\"")}
	}
	c, err := config.Load(f.config, nil)
	if err != nil {
		return nil, err
	}
	w := c.WeChat
	if f.sim {
		if !f.v3 {
			return nil, nil
		}
		if f.baseURL == "" {
			f.baseURL = "http://127.0.0.1:8090"
		}
		creds, err := simCredentials(ctx, f.baseURL, wxsim.DefaultMchID)
		if err != nil {
			return nil, err
		}
		w = config.WeChat{AppID: wxsim.DefaultAppID, MchID: wxsim.DefaultMchID, Verifier: config.VerifierCertificates}
		useSimV3Credentials(&w, creds)
		if len(creds.PlatformCertificates) == 0 {
			w.Verifier = config.VerifierPublicKey // a public-key-only merchant
		}
	} else if !w.V3() {
		return nil, nil
	}
	if f.baseURL != "" {
		w.BaseURL = f.baseURL
	}
	if p := w.V3Problems(); len(p) > 0 {
		return nil, errors.New("config: " + strings.Join(p, "; "))
	}
	return newV3(ctx, &w, "", slog.New(slog.DiscardHandler), nil)
}

// client builds an apiv2 client from the config, or the simulator's
// default merchant with --sim.
func (f *opsFlags) client() (*apiv2.Client, error) {
	c, err := config.Load(f.config, nil)
	if err != nil {
		return nil, err
	}
	w := c.WeChat
	if f.sim {
		w.AppID, w.MchID, w.APIKey = wxsim.DefaultAppID, wxsim.DefaultMchID, wxsim.DefaultAPIKey
		if f.baseURL == "" {
			f.baseURL = "http://127.0.0.1:8090"
		}
	}
	base := f.baseURL
	if base == "" {
		base = w.BaseURL
	}
	var opts []apiv2.Option
	if base != "" {
		opts = append(opts, apiv2.WithBaseURL(base))
	}
	if w.Failover {
		opts = append(opts, apiv2.WithFailover(""))
	}
	return apiv2.NewClient(apiv2.Config{
		AppID: w.AppID, MchID: w.MchID, APIKey: w.APIKey, SignType: wxpay.SignType(w.SignType),
		CertFile: w.CertFile, KeyFile: w.KeyFile, P12File: w.P12File, AppSecret: w.AppSecret,
	}, opts...)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// explain adds the diagnosis of a signature error to its one line.
func explain(err error) error {
	var ae *apiv2.Error
	if errors.As(err, &ae) && ae.Diagnosis != nil {
		return fmt.Errorf("%w\n%s", err, strings.TrimRight(ae.Diagnosis.String(), "\n"))
	}
	return err
}

func newOrderCmd(s streams) *cobra.Command {
	var f opsFlags
	cmd := &cobra.Command{
		Use:   "order query|close OUT_TRADE_NO",
		Short: "Query or close an order at WeChat (or the simulator)",
		Example: `  wxpay order query WX261129101500ABCDEFGHJK --config wxpay.toml
  wxpay order close WX261129101500ABCDEFGHJK --sim --base-url http://127.0.0.1:8090
  wxpay order query WX261129101500ABCDEFGHJK --sim --v3   # APIv3 at the simulator`,
	}
	query := &cobra.Command{
		Use: "query OUT_TRADE_NO", Short: "Query an order (orderquery)", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v3, err := f.v3Client(cmd.Context())
			if err != nil {
				return err
			}
			if v3 != nil {
				defer v3.stop()
				t, err := v3.client.QueryByOutTradeNo(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return printJSON(s.out, map[string]any{
					"out_trade_no": t.OutTradeNo, "trade_state": t.TradeState, "trade_state_desc": t.TradeStateDesc,
					"total_fee": t.Amount.Total, "cash_fee": t.Amount.PayerTotal, "transaction_id": t.TransactionID,
					"openid": t.Payer.OpenID, "time_end": timeOrEmpty(t.SuccessTime),
				})
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.OrderQuery(cmd.Context(), &apiv2.OrderQueryRequest{OutTradeNo: args[0]})
			if err != nil {
				return explain(err)
			}
			return printJSON(s.out, map[string]any{
				"out_trade_no": r.OutTradeNo, "trade_state": r.TradeState, "trade_state_desc": r.TradeStateDesc,
				"total_fee": r.TotalFee, "cash_fee": r.CashFee, "transaction_id": r.TransactionID,
				"openid": r.OpenID, "time_end": timeOrEmpty(r.TimeEnd),
			})
		},
	}
	closeCmd := &cobra.Command{
		Use: "close OUT_TRADE_NO", Short: "Close an unpaid order (closeorder)", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v3, err := f.v3Client(cmd.Context())
			if err != nil {
				return err
			}
			if v3 != nil {
				defer v3.stop()
				if err := v3.client.CloseOrder(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(s.out, "closed %s\n", args[0])
				return nil
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			if _, err := c.CloseOrder(cmd.Context(), args[0]); err != nil {
				return explain(err)
			}
			fmt.Fprintf(s.out, "closed %s\n", args[0])
			return nil
		},
	}
	f.add(query)
	f.add(closeCmd)
	cmd.AddCommand(query, closeCmd)
	return cmd
}

func timeOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}

func newRefundCmd(s streams) *cobra.Command {
	var f opsFlags
	var fee, total int64
	var no, reason string
	cmd := &cobra.Command{
		Use:   "refund OUT_TRADE_NO --fee F [--total T] [--out-refund-no N]",
		Short: "Refund (part of) a paid order at WeChat; amounts in fen",
		Long: `refund asks WeChat for a refund. The order's total is queried when --total is
not given. Give --out-refund-no to retry a refund whose outcome was unknown:
the same number is the same refund; a new number would refund twice.`,
		Example: `  wxpay refund WX261129101500ABCDEFGHJK --fee 800 --config wxpay.toml`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if fee <= 0 {
				return usageError{errors.New("--fee must be > 0 (fen)")}
			}
			ctx := cmd.Context()
			v3, err := f.v3Client(ctx)
			if err != nil {
				return err
			}
			newNo := func() {
				if no == "" {
					no = "RF" + time.Now().In(wxpay.China).Format("060102150405") + strings.ToUpper(randomWord(8))
					fmt.Fprintf(s.err, "out_refund_no %s (reuse it to retry)\n", no)
				}
			}
			if v3 != nil {
				defer v3.stop()
				if total == 0 {
					t, err := v3.client.QueryByOutTradeNo(ctx, args[0])
					if err != nil {
						return err
					}
					total = t.Amount.Total
				}
				newNo()
				r, err := v3.client.CreateRefund(ctx, &apiv3.RefundRequest{OutTradeNo: args[0], OutRefundNo: no, Total: total, Refund: fee, Reason: reason})
				if err != nil {
					if apiv3.OutcomeUnknown(err) {
						return fmt.Errorf("%w\nretry with --out-refund-no %s, or check with the refund query", err, no)
					}
					return err
				}
				return printJSON(s.out, map[string]any{"out_refund_no": r.OutRefundNo, "refund_id": r.RefundID,
					"refund_fee": r.Amount.Refund, "total_fee": r.Amount.Total, "status": r.Status})
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			if total == 0 {
				q, err := c.OrderQuery(ctx, &apiv2.OrderQueryRequest{OutTradeNo: args[0]})
				if err != nil {
					return explain(err)
				}
				total = q.TotalFee
			}
			newNo()
			r, err := c.Refund(ctx, &apiv2.RefundRequest{OutTradeNo: args[0], OutRefundNo: no, TotalFee: total, RefundFee: fee, RefundDesc: reason})
			if err != nil {
				if apiv2.OutcomeUnknown(err) {
					return fmt.Errorf("%w\nretry with --out-refund-no %s, or check with the refund query", err, no)
				}
				return explain(err)
			}
			return printJSON(s.out, map[string]any{"out_refund_no": r.OutRefundNo, "refund_id": r.RefundID,
				"refund_fee": r.RefundFee, "total_fee": r.TotalFee, "status": "PROCESSING"})
		},
	}
	f.add(cmd)
	cmd.Flags().Int64Var(&fee, "fee", 0, "the refund in fen")
	cmd.Flags().Int64Var(&total, "total", 0, "the order's total in fen (default: queried)")
	cmd.Flags().StringVar(&no, "out-refund-no", "", "the refund number (default: a new one)")
	cmd.Flags().StringVar(&reason, "reason", "", "shown to the user")
	return cmd
}

func newBillCmd(s streams) *cobra.Command {
	var f opsFlags
	var date, until, typ, out string
	cmd := &cobra.Command{
		Use:   "bill --date YYYY-MM-DD [--until YYYY-MM-DD] [--type ALL|SUCCESS|REFUND] [--out F]",
		Short: "Download trade bills (a day, or a range with a progress bar)",
		Example: `  wxpay bill --date 2026-11-28 --config wxpay.toml --out bill-2026-11-28.csv
  wxpay bill --date 2026-11-01 --until 2026-11-28 --out nov.csv`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := time.ParseInLocation("2006-01-02", date, wxpay.China)
			if err != nil {
				return usageError{fmt.Errorf("--date %q is not YYYY-MM-DD", date)}
			}
			to := from
			if until != "" {
				if to, err = time.ParseInLocation("2006-01-02", until, wxpay.China); err != nil || to.Before(from) {
					return usageError{fmt.Errorf("--until %q is not a YYYY-MM-DD on or after --date", until)}
				}
			}
			// download is one day's raw bill, through v2 or APIv3.
			var download func(day time.Time) ([]byte, error)
			v3, err := f.v3Client(cmd.Context())
			if err != nil {
				return err
			}
			if v3 != nil {
				defer v3.stop()
				download = func(day time.Time) ([]byte, error) {
					raw, err := v3.client.TradeBill(cmd.Context(), &apiv3.TradeBillRequest{Date: day, Type: wxpay.BillType(strings.ToUpper(typ)), Gzip: true})
					if errors.Is(err, apiv3.ErrNoStatementExist) {
						err = apiv2.ErrNoBill
					}
					return raw, err
				}
			} else {
				c, err := f.client()
				if err != nil {
					return err
				}
				download = func(day time.Time) ([]byte, error) {
					raw, err := c.DownloadBillRaw(cmd.Context(), &apiv2.DownloadBillRequest{Date: day, Type: wxpay.BillType(strings.ToUpper(typ)), Gzip: true})
					if err != nil && !errors.Is(err, apiv2.ErrNoBill) {
						err = explain(err)
					}
					return raw, err
				}
			}
			w := s.out
			if out != "" {
				file, err := os.Create(out)
				if err != nil {
					return err
				}
				defer file.Close()
				w = file
			}
			days := int(to.Sub(from).Hours()/24) + 1
			var rows int
			var paid, refunded int64
			for i := 0; i < days; i++ {
				day := from.AddDate(0, 0, i)
				if days > 1 {
					progress(s.err, i, days, day.Format("2006-01-02"))
				}
				raw, err := download(day)
				if errors.Is(err, apiv2.ErrNoBill) {
					continue
				}
				if err != nil {
					return fmt.Errorf("%s: %w", day.Format("2006-01-02"), err)
				}
				bill, err := apiv2.ParseBill(raw)
				if err != nil {
					return fmt.Errorf("%s: %w", day.Format("2006-01-02"), err)
				}
				if err := writeBillCSV(w, bill, i == 0); err != nil {
					return err
				}
				rows += len(bill.Rows)
				paid += bill.Summary.TotalFee
				refunded += bill.Summary.RefundFee
			}
			if days > 1 {
				progress(s.err, days, days, "done")
				fmt.Fprintln(s.err)
			}
			fmt.Fprintf(s.err, "%d rows, %s yuan paid, %s yuan refunded\n", rows, apiv2.FormatYuan(paid), apiv2.FormatYuan(refunded))
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&date, "date", "", "the bill's day, China time (YYYY-MM-DD)")
	cmd.Flags().StringVar(&until, "until", "", "the last day of a range")
	cmd.Flags().StringVar(&typ, "type", "ALL", "ALL, SUCCESS or REFUND")
	cmd.Flags().StringVar(&out, "out", "", "write the rows to this CSV file (default: stdout)")
	return cmd
}

// writeBillCSV writes parsed rows as plain CSV (no backquotes, amounts in yuan).
func writeBillCSV(w io.Writer, b *apiv2.Bill, header bool) error {
	if header {
		if _, err := fmt.Fprintln(w, "trade_time,out_trade_no,transaction_id,trade_state,total_fee_yuan,out_refund_no,refund_id,refund_fee_yuan,refund_status,body"); err != nil {
			return err
		}
	}
	for _, r := range b.Rows {
		body := strings.ReplaceAll(r.Body, ",", " ")
		if _, err := fmt.Fprintf(w, "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", r.TradeTime.Format("2006-01-02 15:04:05"), r.OutTradeNo,
			r.TransactionID, r.TradeState, apiv2.FormatYuan(r.TotalFee), r.OutRefundNo, r.RefundID,
			apiv2.FormatYuan(r.RefundFee), r.RefundStatus, body); err != nil {
			return err
		}
	}
	return nil
}

// progress draws a one-line progress bar on w.
func progress(w io.Writer, done, total int, label string) {
	const width = 30
	n := done * width / total
	fmt.Fprintf(w, "\r[%s%s] %d/%d %-12s", strings.Repeat("#", n), strings.Repeat(".", width-n), done, total, label)
}

func newQRCmd(s streams) *cobra.Command {
	var out string
	var size int
	cmd := &cobra.Command{
		Use:   "qr URL [--out F.png]",
		Short: "Draw a QR code (a Native code_url or mode-1 URL) as PNG or in the terminal",
		Example: `  wxpay qr 'weixin://wxpay/bizpayurl?pr=abc1234'
  wxpay qr 'weixin://wxpay/bizpayurl?pr=abc1234' --out pay.png`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := qrcode.New(args[0], qrcode.Medium)
			if err != nil {
				return err
			}
			if out != "" {
				if err := q.WriteFile(size, out); err != nil {
					return err
				}
				fmt.Fprintf(s.out, "wrote %s\n", out)
				return nil
			}
			fmt.Fprint(s.out, terminalQR(q.Bitmap()))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write a PNG file instead of drawing in the terminal")
	cmd.Flags().IntVar(&size, "size", 256, "PNG size in pixels")
	return cmd
}

// terminalQR draws a bitmap with half blocks, two rows per line, dark on
// light so phone cameras read it from a dark terminal too.
func terminalQR(bm [][]bool) string {
	var b strings.Builder
	for y := 0; y < len(bm); y += 2 {
		for x := range bm[y] {
			top := bm[y][x]
			bottom := y+1 < len(bm) && bm[y+1][x]
			switch {
			case top && bottom:
				b.WriteRune(' ')
			case top:
				b.WriteRune('▄')
			case bottom:
				b.WriteRune('▀')
			default:
				b.WriteRune('█')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

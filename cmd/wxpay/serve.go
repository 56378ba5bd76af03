package main

import (
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wxpay-go/wxpay/internal/config"
	"github.com/wxpay-go/wxpay/merchant/httpapi"
	"github.com/wxpay-go/wxpay/merchant/webui"
)

func init() { extraCommands = append(extraCommands, newServeCmd) }

func newServeCmd(s streams) *cobra.Command {
	var cfgFile, addr, db, logFormat string
	var sim bool
	cmd := &cobra.Command{
		Use:   "serve [--config F] [--addr :8080] [--db sqlite:PATH|postgres://…] [--sim]",
		Short: "Run the merchant service (mini-program API, notifies, admin, jobs)",
		Long: `serve runs the merchant service: the mini-program API (/api/v1/…), WeChat's
notify endpoints (/wxpay/notify/pay, /wxpay/notify/refund), the admin API and
dashboard (/admin/), probes (/healthz, /readyz) and metrics (/metrics), with
the background jobs (settle unknown orders, close expired ones, refunds,
daily reconciliation, webhooks).

--sim embeds the WeChat Pay simulator and points the service at it, with a
demo catalog: open / for an emulated mini program that pays for real against
the simulator, /sim/ for the simulator's cashier page.

Configuration: a TOML file (--config), every key overridable by WXPAY_…
variables (wechat.api_key → WXPAY_WECHAT_API_KEY); secrets may be files
(api_key_file, app_secret_file, admin_token_file) readable by their owner only.`,
		Example: `  wxpay serve --sim
  wxpay serve --config wxpay.toml --db postgres://wxpay@db/wxpay
  WXPAY_ADMIN_TOKEN=$(cat token) wxpay serve --config wxpay.toml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := config.Load(cfgFile, nil)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("addr") {
				c.Addr = addr
			}
			if cmd.Flags().Changed("db") {
				c.DB = db
			}
			if cmd.Flags().Changed("log-format") {
				c.LogFormat = logFormat
			}
			log, err := newLogger(s, c)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", c.Addr)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			a, err := newApp(ctx, appOptions{cfg: c, listener: ln, sim: sim, log: log, out: s.out})
			if err != nil {
				ln.Close()
				return err
			}
			defer a.Close()
			api := "WeChat Pay v2"
			if c.WeChat.V3() {
				api = "WeChat Pay APIv3, verifier " + c.WeChat.Verifier
			}
			fmt.Fprintf(s.out, "wxpay serving on %s (db %s, %s, merchant %s)\n", a.baseURL, redactDSN(c.DB), api, c.WeChat.MchID)
			if sim {
				fmt.Fprintf(s.out, "  mini program (emulated): %s/\n  admin dashboard:         %s/admin/\n  simulator cashier:       %s/sim/\n",
					a.baseURL, a.baseURL, a.baseURL)
			}
			srv := httpapi.NewHTTPServer(c.Addr, a.handler)
			return serveUntilDone(ctx, s.err, srv, ln, false)
		},
	}
	cmd.Flags().StringVar(&cfgFile, "config", "", "TOML config file")
	cmd.Flags().StringVar(&addr, "addr", ":8080", "listen address")
	cmd.Flags().StringVar(&db, "db", "sqlite:./wxpay.db", "sqlite:PATH or postgres://…")
	cmd.Flags().BoolVar(&sim, "sim", false, "embed the WeChat Pay simulator (no merchant account needed)")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "text or json")
	return cmd
}

// newLogger builds the service's slog logger on stderr.
func newLogger(s streams, c *config.Config) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("log_level %q: %w", c.LogLevel, err)
	}
	o := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(c.LogFormat) {
	case "", "text":
		return slog.New(slog.NewTextHandler(s.err, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(s.err, o)), nil
	}
	return nil, usageError{fmt.Errorf("log format %q: use text or json", c.LogFormat)}
}

// mountWebUI serves the admin dashboard at /admin/ and, with the
// simulator, the emulated mini program at /.
func mountWebUI(api *httpapi.Server, sim bool) error {
	if err := api.Mount("/admin/", webui.Admin()); err != nil {
		return err
	}
	if sim {
		return api.Mount("/", webui.Shop())
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/wxpay-go/wxpay/wxsim"
)

func init() { extraCommands = append(extraCommands, newSimCmd) }

// simFile is the simulator's optional TOML configuration: more merchants
// and apps than the default one.
type simFile struct {
	Merchants []struct {
		MchID             string `toml:"mch_id"`
		APIKey            string `toml:"api_key"`
		NativeCallbackURL string `toml:"native_callback_url"`
		RefundNotifyURL   string `toml:"refund_notify_url"`
		Apps              []struct {
			AppID     string `toml:"app_id"`
			AppSecret string `toml:"app_secret"`
		} `toml:"apps"`
	} `toml:"merchants"`
	CloseMinAge string `toml:"close_min_age"`
	RefundDelay string `toml:"refund_delay"`
}

func loadSimFile(path string, cfg *wxsim.Config) error {
	var f simFile
	md, err := toml.DecodeFile(path, &f)
	if err != nil {
		return err
	}
	if und := md.Undecoded(); len(und) > 0 {
		return fmt.Errorf("%s: unknown key %q", path, und[0].String())
	}
	for _, m := range f.Merchants {
		mm := wxsim.Merchant{MchID: m.MchID, APIKey: m.APIKey, NativeCallbackURL: m.NativeCallbackURL, RefundNotifyURL: m.RefundNotifyURL}
		for _, a := range m.Apps {
			mm.Apps = append(mm.Apps, wxsim.App{AppID: a.AppID, AppSecret: a.AppSecret})
		}
		cfg.Merchants = append(cfg.Merchants, mm)
	}
	for _, d := range []struct {
		s   string
		dst *time.Duration
	}{{f.CloseMinAge, &cfg.CloseMinAge}, {f.RefundDelay, &cfg.RefundDelay}} {
		if d.s != "" {
			if *d.dst, err = time.ParseDuration(d.s); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	return nil
}

func newSimCmd(s streams) *cobra.Command {
	var (
		addr, cfgFile, tlsDir string
		scale                 float64
		useTLS                bool
	)
	cmd := &cobra.Command{
		Use:   "sim [--addr 127.0.0.1:8090] [--time-scale N] [--tls] [--config F]",
		Short: "Run the WeChat Pay + mini-program login simulator",
		Long: `sim serves a faithful local WeChat Pay v2 (at the real paths: /pay/unifiedorder,
/secapi/pay/refund, …) and mini-program login (/sns/jscode2session), with the
control API (/sim/v1/…) that plays the WeChat user, and the cashier page at
/sim/. Point your SDK's base URL at it. The default merchant is the seed's:
app id wx426b3015555a46be, mch id 1225312702, key e10adc3949ba59abbe56e057f20f883e,
app secret 01c6d59a3f9024db6336662ac95c8e74.

--time-scale N makes the simulator's own delays (the notify retry schedule,
refund processing) N times shorter. --tls serves HTTPS with a local CA
(written to --tls-dir) and requires the merchant's client certificate,
issued there too, on /secapi/*.`,
		Example: `  wxpay sim
  wxpay sim --time-scale 600 --addr 127.0.0.1:8090
  wxpay sim --tls --tls-dir ./sim-tls   # then trust ./sim-tls/ca.pem`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := wxsim.Config{TimeScale: scale, Logger: slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: slog.LevelInfo}))}
			if cfgFile != "" {
				if err := loadSimFile(cfgFile, &cfg); err != nil {
					return fmt.Errorf("sim config: %w", err)
				}
			}
			var ca *wxsim.CA
			if useTLS {
				var err error
				if ca, err = wxsim.NewCA(tlsDir); err != nil {
					return err
				}
				ca.Configure(&cfg)
			}
			sim, err := wxsim.New(cfg)
			if err != nil {
				return err
			}
			defer sim.Close()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
				WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
			scheme := "http"
			if ca != nil {
				scheme = "https"
				srv.TLSConfig = ca.ServerTLSConfig()
				for _, m := range sim.MchIDs() {
					cc, err := ca.ClientCert(m)
					if err != nil {
						return err
					}
					fmt.Fprintf(s.out, "client certificate of %s: %s (apiclient_cert.pem, apiclient_key.pem, apiclient_cert.p12)\n", m, cc.Dir)
				}
				fmt.Fprintf(s.out, "CA to trust: %s\n", ca.CertFile())
			}
			base := fmt.Sprintf("%s://%s", scheme, ln.Addr())
			fmt.Fprintf(s.out, "simulator on %s (cashier page %s/sim/)\n", base, base)
			return serveUntilDone(cmd.Context(), s.err, srv, ln, ca != nil)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8090", "listen address")
	cmd.Flags().Float64Var(&scale, "time-scale", 1, "divide the simulator's delays (notify retries, refunds) by N")
	cmd.Flags().BoolVar(&useTLS, "tls", false, "serve HTTPS with a local CA and require client certificates on /secapi/*")
	cmd.Flags().StringVar(&tlsDir, "tls-dir", "./wxsim-tls", "where --tls keeps its CA and certificates")
	cmd.Flags().StringVar(&cfgFile, "config", "", "TOML file with more merchants and apps")
	return cmd
}

// serveUntilDone serves until the context ends, then shuts down gracefully.
func serveUntilDone(ctx context.Context, log io.Writer, srv *http.Server, ln net.Listener, useTLS bool) error {
	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	<-errc
	fmt.Fprintln(log, "stopped")
	return nil
}

// Command wxpay runs the wxpay merchant service, the WeChat Pay simulator,
// the end-to-end demo, and the operator's tools (sign, verify, paysign,
// decrypt-refund, order, refund, bill, qr, trigger, logs, load, certs).
//
//	wxpay serve --sim        # the service with an embedded simulator
//	wxpay demo               # the whole mini-program payment flow, step by step
//	wxpay --help             # everything else
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// streams are the command's standard streams, replaced in tests.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// exitError carries an exit code other than 1 (e.g. verify's "invalid").
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], streams{os.Stdin, os.Stdout, os.Stderr})
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit code: 0 on success,
// 1 on failure, 2 on a usage error. Errors are one line on stderr, never a
// stack trace.
func run(ctx context.Context, args []string, s streams) int {
	root := newRoot(s)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(s.err, ee.msg)
		}
		return ee.code
	}
	fmt.Fprintf(s.err, "wxpay: %v\n", err)
	if isUsage(err) {
		fmt.Fprintln(s.err, "Run 'wxpay --help' for usage.")
		return 2
	}
	return 1
}

// usageError marks a mistake on the command line.
type usageError struct{ error }

func isUsage(err error) bool {
	var u usageError
	if errors.As(err, &u) {
		return true
	}
	// cobra's own argument errors
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.Contains(msg, "accepts ") || strings.HasPrefix(msg, "required flag")
}

func newRoot(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "wxpay",
		Short: "WeChat Pay for mini programs: merchant service, simulator and tools",
		Long: `wxpay takes WeChat Pay (API v2 and v3) inside a WeChat Mini Program: a merchant
service (orders, notifies, refunds, reconciliation), a faithful local
simulator of WeChat Pay and mini-program login, and the tools to debug an
integration.`,
		Example: `  wxpay serve --sim      # service + simulator on :8080, open http://localhost:8080/
  wxpay demo             # the whole seed flow, every step printed
  wxpay sign --key $KEY appid=wx1 mch_id=1 nonce_str=abc`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newSignCmd(s), newVerifyCmd(s), newPaySignCmd(s), newDecryptRefundCmd(s),
		newVersionCmd(s),
	)
	for _, c := range extraCommands {
		root.AddCommand(c(s))
	}
	root.SetHelpCommand(&cobra.Command{Hidden: true})
	return root
}

// extraCommands are added by the files that define them (serve, sim, …).
var extraCommands []func(streams) *cobra.Command

func newVersionCmd(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(s.out, "wxpay", version)
			return nil
		},
	}
}

const version = "0.1.0"

// noArgs is cobra.NoArgs as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args[0])}
	}
	return nil
}

// exactArgs is cobra.ExactArgs as a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s), got %d", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}

package payments_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wxpay-go/wxpay/apiv2"
	"github.com/wxpay-go/wxpay/merchant"
	"github.com/wxpay-go/wxpay/merchant/payments"
	"github.com/wxpay-go/wxpay/merchant/river"
	"github.com/wxpay-go/wxpay/merchant/wxgateway"
)

// instance is a second merchant service: its own store (a second pool on
// the same database), gateway (over the harness's API), service and jobs.
type instance struct {
	store  merchant.Store
	svc    *payments.Service
	runner *river.Runner
}

func (h *harness) instance() *instance {
	h.t.Helper()
	st := openStore(h.t, h.ref, h.clock.Now)
	var gw merchant.Gateway
	if h.v3 != nil {
		_, gw = h.v3Client(h.v3.mode, h.simURL, h.url+"/wxpay/notify/pay", nil)
	} else {
		pay, err := apiv2.NewClient(apiv2.Config{AppID: appID, MchID: mchID, APIKey: canaryAPIKey},
			apiv2.WithBaseURL(h.simURL), apiv2.WithClock(h.clock.Now), apiv2.WithLogger(h.logger))
		if err != nil {
			h.t.Fatal(err)
		}
		if gw, err = wxgateway.New(wxgateway.Config{Pay: pay, NotifyURL: h.url + "/wxpay/notify/pay",
			RefundNotifyURL: h.url + "/wxpay/notify/refund"}); err != nil {
			h.t.Fatal(err)
		}
	}
	svc, err := payments.New(st, gw, payments.Config{Catalog: catalog, Now: h.clock.Now, Logger: h.logger})
	if err != nil {
		h.t.Fatal(err)
	}
	r, err := river.NewRunner(river.Config{Payments: svc, Logger: h.logger})
	if err != nil {
		h.t.Fatal(err)
	}
	return &instance{store: st, svc: svc, runner: r}
}

// TestTwoInstancesOneDatabase: two service instances on one database —
// on PostgreSQL as deployed (two pools, two processes' worth of
// services), and on SQLite as two stores on one file. Every order's
// genuine notify is delivered to both at once, several times, while both
// query it; both settle jobs run at once on orders whose notifies were
// lost; both take a refund of 60 % of the same order. Each order is paid
// once with one outbox event, one refund is accepted, and I1–I9 hold. For
// a v3 merchant each instance has its own APIv3 client and certificate
// manager, and the notifies go with their Wechatpay-* headers.
func TestTwoInstancesOneDatabase(t *testing.T) {
	eachStoreAndAPI(t, func(t *testing.T, sk storeKind, api apiKind) {
		h := newHarness(t, sk, withAPI(api))
		a := &instance{store: h.store, svc: h.svc, runner: h.runner}
		b := h.instance()
		both := []*instance{a, b}
		sess := h.user()

		var nos []string
		h.front.holdNotifies("pay", true)
		for i := range 10 {
			res, err := both[i%2].svc.CreateOrder(h.ctx, sess, payments.CreateOrderRequest{Items: oneCoffee})
			if err != nil {
				t.Fatal(err)
			}
			h.payAtSim(sess, res)
			nos = append(nos, res.Order.OutTradeNo)
		}
		const per = 6 // per order: a notify to each instance twice, a query on each
		errs := parallel(per*len(nos), func(i int) error {
			no, k := nos[i/per], i%per
			in := both[k%2]
			if k < 4 {
				header, body := h.payNotify(no)
				return in.svc.HandlePayNotify(h.ctx, header, body)
			}
			o, err := in.svc.Sync(h.ctx, no)
			if err == nil && !o.Status.Paid() {
				err = errors.New("sync left it " + string(o.Status))
			}
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("racer %d: %v", i, err)
			}
		}
		for _, no := range nos {
			h.wantOnePayment(no)
		}
		h.front.holdNotifies("pay", false)

		// Both settle jobs at once, on orders whose notifies were lost.
		h.sim.NotifyDrop(6)
		nos = nos[:0]
		for i := range 6 {
			res, err := both[i%2].svc.CreateOrder(h.ctx, sess, payments.CreateOrderRequest{Items: oneCoffee})
			if err != nil {
				t.Fatal(err)
			}
			if i < 4 {
				h.payAtSim(sess, res)
			}
			nos = append(nos, res.Order.OutTradeNo)
		}
		h.advance(61 * time.Second)
		errs = parallel(2, func(i int) error {
			_, err := both[i].runner.RunOnce(h.ctx, river.KindSettle)
			return err
		})
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, no := range nos[:4] {
			h.wantOnePayment(no)
		}

		// A refund of 60 % from each instance, at once: one accepted.
		o := h.order(nos[0])
		var ok int
		errs = parallel(8, func(i int) error {
			_, err := both[i%2].svc.Refund(h.ctx, payments.RefundRequest{OutTradeNo: o.OutTradeNo, RefundFee: o.TotalFee * 6 / 10})
			return err
		})
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errCode(err) != merchant.EINVALID:
				t.Fatal(err)
			}
		}
		if ok != 1 || len(h.sim.Refunds(mchID)) != 1 {
			t.Fatalf("%d refunds accepted, %d at WeChat", ok, len(h.sim.Refunds(mchID)))
		}
		h.finish()
	})
}

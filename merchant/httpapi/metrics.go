package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wxpay-go/wxpay/merchant/payments"
)

// Metrics are the service's Prometheus metrics, all on one registry (names
// prefixed wxpay_):
//
//	orders_created_total{trade_type}          orders stored (not idempotent replays)
//	orders_paid_total{source}                 orders marked paid, by notify or query
//	notify_total{kind,result,reason}          notifies: pay|refund, ok|rejected|error
//	refunds_total{status}                     refund transitions
//	jobs_total{kind,result}                   background jobs run
//	wechat_call_duration_seconds{api,outcome} WeChat calls
//	http_requests_total{route,status}         HTTP requests answered
//	http_request_duration_seconds{route}      HTTP request latency
//
// plus the Go runtime and process collectors. A *Metrics is a
// payments.Metrics; its ObserveWeChat method is a wxgateway.Config.Observe.
// Build it first, so that the service and the gateway can be given it
// before the Server is.
type Metrics struct {
	reg *prometheus.Registry

	ordersCreated *prometheus.CounterVec
	ordersPaid    *prometheus.CounterVec
	notify        *prometheus.CounterVec
	refunds       *prometheus.CounterVec
	jobs          *prometheus.CounterVec
	wechat        *prometheus.HistogramVec
	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
}

var _ payments.Metrics = (*Metrics)(nil)

// NewMetrics registers the metrics on reg (a new registry when nil). Metrics
// already registered there, by an earlier NewMetrics for example, are
// reused rather than duplicated.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{reg: reg}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "wxpay", Name: name, Help: help}, labels))
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "wxpay", Name: name, Help: help, Buckets: buckets}, labels))
	}
	m.ordersCreated = counter("orders_created_total", "Orders stored, by trade type.", "trade_type")
	m.ordersPaid = counter("orders_paid_total", "Orders marked paid, by what told us (notify or query).", "source")
	m.notify = counter("notify_total", "Notifies received, by kind (pay, refund), result (ok, rejected, error) and reason.", "kind", "result", "reason")
	m.refunds = counter("refunds_total", "Refund transitions, by the status reached.", "status")
	m.jobs = counter("jobs_total", "Background jobs run, by kind and result.", "kind", "result")
	m.wechat = histogram("wechat_call_duration_seconds", "WeChat API calls, by API and outcome (ok, unknown, rejected or an err_code).",
		[]float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "api", "outcome")
	m.httpRequests = counter("http_requests_total", "HTTP requests answered, by route pattern and status.", "route", "status")
	m.httpDuration = histogram("http_request_duration_seconds", "HTTP request latency, by route pattern.", prometheus.DefBuckets, "route")
	register(reg, collectors.NewGoCollector())
	register(reg, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// register registers c on reg, or returns the collector already there.
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A clash of names with another kind of metric is a wiring bug.
		panic("httpapi: registering metrics: " + err.Error())
	}
	return c
}

// Registry returns the registry the metrics are on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// OrderCreated counts an order stored (payments.Metrics).
func (m *Metrics) OrderCreated(tradeType string) { m.ordersCreated.WithLabelValues(tradeType).Inc() }

// OrderPaid counts an order marked paid (payments.Metrics).
func (m *Metrics) OrderPaid(source string) { m.ordersPaid.WithLabelValues(source).Inc() }

// Notify counts a notify and what came of it (payments.Metrics).
func (m *Metrics) Notify(kind, result, reason string) {
	m.notify.WithLabelValues(kind, result, reason).Inc()
}

// Refund counts a refund reaching a status (payments.Metrics).
func (m *Metrics) Refund(status string) { m.refunds.WithLabelValues(status).Inc() }

// JobDone counts a background job run: its kind and its result (for
// example "ok" or "error").
func (m *Metrics) JobDone(kind, result string) { m.jobs.WithLabelValues(kind, result).Inc() }

// ObserveWeChat records a WeChat call: pass it as wxgateway.Config.Observe.
func (m *Metrics) ObserveWeChat(api, outcome string, d time.Duration) {
	m.wechat.WithLabelValues(api, outcome).Observe(d.Seconds())
}

// observeHTTP records an answered request.
func (m *Metrics) observeHTTP(route string, status int, d time.Duration) {
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
}

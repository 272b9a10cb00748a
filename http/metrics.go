package http

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/envy-dev/envy/service"
)

// metrics are the server's Prometheus collectors. Labels are route
// patterns and methods, never raw paths, so their number stays bounded
// and no scope path or name leaks into them.
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	storeErrors *prometheus.CounterVec

	// series caches the children of requests and duration by their
	// labels: looking them up in the vectors hashes every label and takes
	// a lock on each request. Its keys are bounded as the labels are.
	series sync.Map // seriesKey → *seriesOf
}

type seriesKey struct {
	route, method string
	status        int
}

type seriesOf struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envy_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "envy_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envy_store_errors_total",
			Help: "Requests answered 500 internal or 503 unavailable, by code.",
		}, []string{"code"}),
	}
	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	m.storeErrors = register(reg, m.storeErrors)
	return m
}

// register registers c, or returns the collector already registered under
// the same name (two servers may share a registry).
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

func (m *metrics) observe(route, method string, status int, d time.Duration) {
	k := seriesKey{route, metricMethod(method), status}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, &seriesOf{
			requests: m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(status)),
			duration: m.duration.WithLabelValues(k.route, k.method),
		})
	}
	ser := v.(*seriesOf)
	ser.requests.Inc()
	ser.duration.Observe(d.Seconds())
}

// metricMethod bounds the method label to the standard methods.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// cacheCollector reports the Service's caches (service.Service.CacheStats) at
// each scrape: hits, misses and evictions as counters, entries, bytes and
// the byte bound as gauges, labelled by cache.
type cacheCollector struct {
	stats                                               func() []service.CacheStats
	hits, misses, evictions, entries, bytes, limitBytes *prometheus.Desc
}

func newCacheCollector(stats func() []service.CacheStats) *cacheCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("envy_cache_"+name, help, []string{"cache"}, nil)
	}
	return &cacheCollector{
		stats:      stats,
		hits:       d("hits_total", "Lookups that found a usable entry, by cache."),
		misses:     d("misses_total", "Lookups that did not, by cache."),
		evictions:  d("evictions_total", "Entries pushed out to stay under the byte bound, by cache."),
		entries:    d("entries", "Entries held, by cache."),
		bytes:      d("bytes", "Estimated bytes the entries hold, by cache."),
		limitBytes: d("limit_bytes", "The bound on the bytes a cache holds."),
	}
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.evictions, c.entries, c.bytes, c.limitBytes} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(st.Hits), st.Name)
		ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(st.Misses), st.Name)
		ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(st.Evictions), st.Name)
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(st.Entries), st.Name)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(st.Bytes), st.Name)
		ch <- prometheus.MustNewConstMetric(c.limitBytes, prometheus.GaugeValue, float64(st.LimitBytes), st.Name)
	}
}

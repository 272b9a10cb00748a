package auditstream

import "github.com/prometheus/client_golang/prometheus"

// The per-stream metrics, labelled by the stream as configured
// (file:/var/log/envy/audit.jsonl, stdout, syslog://host:514, …).
var (
	descWritten = prometheus.NewDesc("envy_audit_stream_entries_written_total",
		"Audit entries an audit stream has written.", []string{"stream"}, nil)
	descFailures = prometheus.NewDesc("envy_audit_stream_failures_total",
		"Failed writes and opens of an audit stream (each retry that fails counts).", []string{"stream"}, nil)
	descDropped = prometheus.NewDesc("envy_audit_stream_dropped_total",
		"Audit entries an audit stream dropped for want of room: only entries that need not be audited first (refusals, reports), never a write's or a reveal's.", []string{"stream"}, nil)
	descQueue = prometheus.NewDesc("envy_audit_stream_queue_depth",
		"Audit entries an audit stream holds that are not yet written.", []string{"stream"}, nil)
	descUp = prometheus.NewDesc("envy_audit_stream_up",
		"1 while an audit stream works, 0 while it fails.", []string{"stream"}, nil)
)

// Describe is prometheus.Collector's: register a Set to export its
// streams' metrics.
func (s *Set) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWritten, descFailures, descDropped, descQueue, descUp} {
		ch <- d
	}
}

// Collect is prometheus.Collector's.
func (s *Set) Collect(ch chan<- prometheus.Metric) {
	for _, st := range s.streams {
		st.mu.Lock()
		depth, up := len(st.queue), 0.0
		if st.up {
			up = 1
		}
		st.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(descWritten, prometheus.CounterValue, float64(st.written.Load()), st.name)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(st.failures.Load()), st.name)
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.dropped.Load()), st.name)
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(depth), st.name)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, st.name)
	}
}

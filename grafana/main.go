// Command dashboards writes CityEvents' Grafana dashboards, built with the
// Grafana Foundation SDK, as JSON into the folder given (grafana/dashboards).
// The JSON is checked in; scripts/dashboards.sh regenerates it and fails
// when it differs, and proves every panel's query against a real
// Prometheus scraping the running mesh.
//
// No names are hard-coded: the datasource, namespace and service are
// variables. A series without a namespace label (a local run) matches
// `namespace=~".*"`, so the same queries serve Kubernetes and `make run`.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Server-fault codes: the only ones availability counts as errors.
const serverFaults = `grpc_code=~"Unknown|DeadlineExceeded|Unimplemented|Internal|Unavailable|DataLoss"`

// The selectors every query carries.
const (
	ns  = `namespace=~"$namespace"`
	svc = `namespace=~"$namespace", job=~"$service"`
)

func ptr[T any](v T) *T { return &v }

var datasource = common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${datasource}")}

func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(datasource).Expr(expr).LegendFormat(legend)
}

// graph is a time series panel of one or more queries.
func graph(title, unit, description string, width uint32, queries ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource).
		Unit(unit).
		Min(0).
		Height(8).
		Span(width).
		FillOpacity(10)
	for _, q := range queries {
		p = p.WithTarget(q)
	}
	return p
}

func variables(b *dashboard.DashboardBuilder, withService bool) *dashboard.DashboardBuilder {
	b = b.WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus")).
		WithVariable(dashboard.NewQueryVariableBuilder("namespace").
			Label("Namespace").
			Datasource(datasource).
			Query(dashboard.StringOrMap{String: ptr("label_values(up, namespace)")}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			IncludeAll(true).
			AllValue(".*").
			Multi(true))
	if withService {
		b = b.WithVariable(dashboard.NewQueryVariableBuilder("service").
			Label("Service").
			Datasource(datasource).
			Query(dashboard.StringOrMap{String: ptr(`label_values(up{namespace=~"$namespace"}, job)`)}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			IncludeAll(true).
			AllValue(".*").
			Multi(true))
	}
	return b
}

func base(uid, title, description string, withService bool) *dashboard.DashboardBuilder {
	b := dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"cityevents"}).
		Refresh("30s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(dashboard.NewDashboardLinkBuilder("CityEvents").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"cityevents"}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true))
	return variables(b, withService)
}

// tracesLink opens Grafana's Explore on the traces of the panel's service
// and time (a Tempo datasource named "traces"; Rust's prometheus crate
// writes no exemplars, so the link goes by service and time).
func tracesLink() []cog.Builder[dashboard.DashboardLink] {
	return []cog.Builder[dashboard.DashboardLink]{
		dashboard.NewDashboardLinkBuilder("Traces of ${__field.labels.job}").
			Url(`/explore?left={"datasource":"traces","queries":[{"queryType":"traceql","query":"{resource.service.name=\"${__field.labels.job}\" && duration > 250ms}"}],"range":{"from":"${__from}","to":"${__to}"}}`).
			TargetBlank(true),
	}
}

func overview() *dashboard.DashboardBuilder {
	return base("cityevents-overview", "CityEvents / Overview",
		"Rate, errors and duration of every service; per-pod balance and saturation.", false).
		WithRow(dashboard.NewRowBuilder("Rate, errors, duration")).
		WithPanel(graph("Requests per service", "reqps", "gRPC calls handled per second, by service.", 8,
			query(`sum by (job) (rate(grpc_server_handled_total{`+ns+`}[$__rate_interval]))`, "{{job}}"))).
		WithPanel(graph("Server errors per service", "percentunit",
			"Share of calls ending in a server-fault code (refused input is not an error).", 8,
			query(`(sum by (job) (rate(grpc_server_handled_total{`+ns+`, `+serverFaults+`}[$__rate_interval])) or 0 * sum by (job) (rate(grpc_server_handled_total{`+ns+`}[$__rate_interval]))) / sum by (job) (rate(grpc_server_handled_total{`+ns+`}[$__rate_interval]))`, "{{job}}"))).
		WithPanel(graph("p99 latency per service", "s", "99th percentile of unary call durations.", 8,
			query(`histogram_quantile(0.99, sum by (job, le) (rate(grpc_server_handling_seconds_bucket{`+ns+`, grpc_type="unary"}[$__rate_interval])))`, "{{job}}")).
			DataLinks(tracesLink())).
		WithRow(dashboard.NewRowBuilder("Balance and saturation")).
		WithPanel(graph("Requests per pod", "reqps", "Calls per second per pod: one pod far above its siblings means a client pins it.", 8,
			query(`sum by (job, instance) (rate(grpc_server_handled_total{`+ns+`}[$__rate_interval]))`, "{{job}} {{instance}}"))).
		WithPanel(graph("CPU per pod", "percentunit", "Cores used per pod.", 8,
			query(`sum by (job, instance) (rate(process_cpu_seconds_total{`+ns+`}[$__rate_interval]))`, "{{job}} {{instance}}"))).
		WithPanel(graph("Database pools in use", "percentunit", "Connections in use over the pool's size; at 1 callers wait.", 8,
			query(`sum by (job) (db_pool_connections{`+ns+`, state="in_use"}) / sum by (job) (db_pool_max_connections{`+ns+`})`, "{{job}}"))).
		WithPanel(graph("Calls shed at the edge", "reqps", "Calls the BFF refused at once because the replica was full.", 12,
			query(`sum by (instance) (rate(edge_shed_total{`+ns+`}[$__rate_interval]))`, "{{instance}}"))).
		WithPanel(graph("Memory per pod", "bytes", "Resident memory per pod.", 12,
			query(`sum by (job, instance) (process_resident_memory_bytes{`+ns+`})`, "{{job}} {{instance}}")))
}

func service() *dashboard.DashboardBuilder {
	return base("cityevents-service", "CityEvents / Service",
		"One service in depth: methods, codes, latency, pool, process and messaging.", true).
		WithRow(dashboard.NewRowBuilder("Methods")).
		WithPanel(graph("Requests by method", "reqps", "Calls per second by method.", 12,
			query(`sum by (grpc_method) (rate(grpc_server_handled_total{`+svc+`}[$__rate_interval]))`, "{{grpc_method}}"))).
		WithPanel(graph("Answers by code", "reqps", "Calls per second by status code.", 12,
			query(`sum by (grpc_code) (rate(grpc_server_handled_total{`+svc+`}[$__rate_interval]))`, "{{grpc_code}}"))).
		WithPanel(heatmap.NewPanelBuilder().
			Title("Latency").
			Description("How long calls took, over time.").
			Datasource(datasource).
			Height(8).
			Span(12).
			Calculate(false).
			WithTarget(query(`sum by (le) (rate(grpc_server_handling_seconds_bucket{`+svc+`}[$__rate_interval]))`, "{{le}}").
				Format(prometheus.PromQueryFormatHeatmap))).
		WithPanel(graph("p50 and p99 by method", "s", "Unary call durations by method.", 12,
			query(`histogram_quantile(0.5, sum by (grpc_method, le) (rate(grpc_server_handling_seconds_bucket{`+svc+`, grpc_type="unary"}[$__rate_interval])))`, "p50 {{grpc_method}}"),
			query(`histogram_quantile(0.99, sum by (grpc_method, le) (rate(grpc_server_handling_seconds_bucket{`+svc+`, grpc_type="unary"}[$__rate_interval])))`, "p99 {{grpc_method}}")).
			DataLinks(tracesLink())).
		WithRow(dashboard.NewRowBuilder("Dependencies")).
		WithPanel(graph("Calls to other services", "reqps", "Outgoing gRPC calls by target method and code.", 8,
			query(`sum by (grpc_method, grpc_code) (rate(grpc_client_handled_total{`+svc+`}[$__rate_interval]))`, "{{grpc_method}} {{grpc_code}}"))).
		WithPanel(graph("Database pool", "short", "Connections by state, and the pool's size.", 8,
			query(`sum by (state) (db_pool_connections{`+svc+`})`, "{{state}}"),
			query(`sum(db_pool_max_connections{`+svc+`})`, "size"))).
		WithPanel(graph("Process", "short", "Open file descriptors and CPU cores used.", 8,
			query(`sum by (instance) (process_open_fds{`+svc+`})`, "fds {{instance}}"),
			query(`sum by (instance) (rate(process_cpu_seconds_total{`+svc+`}[$__rate_interval]))`, "cores {{instance}}"))).
		WithPanel(graph("Redis calls", "reqps", "Redis calls by use and result. Rate limits and revocation checks fail closed: their errors are refused calls.", 24,
			query(`sum by (use, result) (rate(redis_calls_total{`+svc+`}[$__rate_interval]))`, "{{use}} {{result}}"))).
		WithPanel(graph("Discovery cache", "reqps", "The feed's page cache in Redis: hits, misses and errors (errors fall back to PostgreSQL).", 12,
			query(`sum by (result) (rate(feed_cache_requests_total{`+svc+`}[$__rate_interval]))`, "{{result}}"))).
		WithPanel(graph("Discovery cache degraded", "short", "1 while Redis fails and pages come from PostgreSQL.", 12,
			query(`max by (instance) (feed_cache_degraded{`+svc+`})`, "{{instance}}"))).
		WithRow(dashboard.NewRowBuilder("Messaging")).
		WithPanel(graph("Consumer lag", "short", "Messages waiting for each durable consumer.", 12,
			query(`sum by (consumer) (consumer_pending_messages{`+svc+`})`, "{{consumer}}"))).
		WithPanel(graph("Outbox", "short", "Rows waiting to be published.", 12,
			query(`sum by (producer) (outbox_backlog{`+svc+`})`, "{{producer}}")))
}

func business() *dashboard.DashboardBuilder {
	return base("cityevents-business", "CityEvents / Business",
		"What people do: joins, the waitlist, check-ins, sign-ins, events, mails, images.", false).
		WithPanel(graph("Joins by outcome", "reqps", "Join requests per second: confirmed, waitlisted, replayed (a retry), refused, expired.", 12,
			query(`sum by (result) (rate(join_requests_total{`+ns+`}[$__rate_interval]))`, "{{result}}"))).
		WithPanel(graph("Refused joins by reason", "reqps", "Joins refused per second, by the reason the caller was given.", 12,
			query(`sum by (reason) (rate(join_refusals_total{`+ns+`}[$__rate_interval]))`, "{{reason}}"))).
		WithPanel(graph("Leaves and promotions", "reqps", "Cancellations by kind, and waitlisted people confirmed as places free.", 12,
			query(`sum by (kind) (rate(join_leaves_total{`+ns+`}[$__rate_interval]))`, "{{kind}}"),
			query(`sum(rate(join_promotions_total{`+ns+`}[$__rate_interval]))`, "promoted"))).
		WithPanel(graph("Check-ins", "reqps", "Tickets checked in at the door: first time, or shown again.", 8,
			query(`sum by (result) (rate(join_check_ins_total{`+ns+`}[$__rate_interval]))`, "{{result}}"))).
		WithPanel(graph("Sign-ins", "reqps", "Sign-ins by result, and registrations.", 8,
			query(`sum by (result) (rate(auth_logins_total{`+ns+`}[$__rate_interval]))`, "sign-in {{result}}"),
			query(`sum by (result) (rate(auth_registrations_total{`+ns+`}[$__rate_interval]))`, "sign-up {{result}}"))).
		WithPanel(graph("Events", "reqps", "Events created, updated, published and cancelled.", 8,
			query(`sum by (action) (rate(events_lifecycle_total{`+ns+`}[$__rate_interval]))`, "{{action}}"))).
		WithPanel(graph("Discovery", "reqps", "Searches, trending and for-you pages served by the feed, by method.", 12,
			query(`sum by (grpc_method) (rate(grpc_server_handled_total{`+ns+`, grpc_service="cityevents.feed.v1.FeedService"}[$__rate_interval]))`, "{{grpc_method}}"))).
		WithPanel(graph("Mails", "reqps", "Mails by delivery result: sent, retry (a transient failure), failed.", 12,
			query(`sum by (result) (rate(mail_deliveries_total{`+ns+`}[$__rate_interval]))`, "{{result}}"))).
		WithPanel(graph("Images", "reqps", "Uploads processed: ready, or failed to decode.", 12,
			query(`sum by (result) (rate(media_images_processed_total{`+ns+`}[$__rate_interval]))`, "{{result}}")))
}

func messaging() *dashboard.DashboardBuilder {
	return base("cityevents-messaging", "CityEvents / Messaging",
		"Outbox → JetStream → consumers: backlog, age, lag, retries and dead letters.", false).
		WithPanel(graph("Outbox backlog", "short", "Rows not yet published, by producer.", 12,
			query(`sum by (producer) (outbox_backlog{`+ns+`})`, "{{producer}}"))).
		WithPanel(graph("Oldest unpublished row", "s", "Age of the oldest row waiting; growing means the relay is stuck.", 12,
			query(`max by (producer) (outbox_oldest_unpublished_seconds{`+ns+`})`, "{{producer}}"))).
		WithPanel(graph("Published", "reqps", "Rows published per second, and failed attempts.", 12,
			query(`sum by (producer) (rate(outbox_published_total{`+ns+`}[$__rate_interval]))`, "{{producer}}"),
			query(`sum by (producer) (rate(outbox_publish_failures_total{`+ns+`}[$__rate_interval]))`, "failed {{producer}}"))).
		WithPanel(graph("Consumer lag", "short", "Messages waiting per durable consumer.", 12,
			query(`sum by (consumer) (consumer_pending_messages{`+ns+`})`, "{{consumer}}"))).
		WithPanel(graph("Handled by result", "reqps", "Messages handled per second: ok, duplicate (the inbox skipped it), retry, dead_letter.", 8,
			query(`sum by (result) (rate(consumer_handled_total{`+ns+`}[$__rate_interval]))`, "{{result}}"))).
		WithPanel(graph("Redeliveries", "reqps", "Messages delivered again per consumer.", 8,
			query(`sum by (consumer) (rate(consumer_redeliveries_total{`+ns+`}[$__rate_interval]))`, "{{consumer}}"))).
		WithPanel(graph("Dead letters", "short", "Messages parked after every retry, per consumer, in the range.", 8,
			query(`sum by (consumer) (increase(consumer_dead_letters_total{`+ns+`}[$__range]))`, "{{consumer}}")))
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dashboards <folder>")
		os.Exit(2)
	}
	for name, b := range map[string]*dashboard.DashboardBuilder{
		"overview":  overview(),
		"service":   service(),
		"business":  business(),
		"messaging": messaging(),
	} {
		d, err := b.Build()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
		out, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join(os.Args[1], name+".json"), append(out, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

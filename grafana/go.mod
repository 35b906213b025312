module github.com/cityevents/cityevents/grafana

go 1.26

require github.com/grafana/grafana-foundation-sdk/go v0.0.22

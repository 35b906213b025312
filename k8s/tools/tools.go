//go:build tools

// Package tools pins the Kubernetes control plane built for the chart's
// tests (scripts/k8s-tools.sh): kube-apiserver, controller-manager,
// scheduler, kubectl and etcd, from the Go module proxy.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)

package kubernetes

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/reana-site/reana-site/batch"
)

// resources turns REANA's kubernetes_* step fields into the container's
// requests and limits, with the site's defaults where the step names
// none. As in REANA, kubernetes_memory_limit alone also sets the request
// (Kubernetes would default it so). A step left without a memory limit
// gets the site's maximum memory as its limit, when there is one. Anything
// above the site's maximum is refused with the field the user wrote, so
// they know what to change.
func resources(h batch.Hints, cfg Config) (corev1.ResourceRequirements, error) {
	var r corev1.ResourceRequirements
	q := func(field, v string) (*resource.Quantity, error) {
		if v == "" {
			return nil, nil
		}
		x, err := resource.ParseQuantity(v)
		if err != nil || x.Sign() <= 0 {
			return nil, fmt.Errorf("%s %q is not a positive Kubernetes quantity such as 2, 500m or 4Gi", field, v)
		}
		return &x, nil
	}
	memLimit, err := q("kubernetes_memory_limit", h.MemoryLimit)
	if err != nil {
		return r, err
	}
	memReq, err := q("kubernetes_memory_request", h.MemoryRequest)
	if err != nil {
		return r, err
	}
	cpuLimit, err := q("kubernetes_cpu_limit", h.CPULimit)
	if err != nil {
		return r, err
	}
	cpuReq, err := q("kubernetes_cpu_request", h.CPURequest)
	if err != nil {
		return r, err
	}
	defMem, err := q("the site's default memory", cfg.DefaultMemory)
	if err != nil {
		return r, err
	}
	defCPU, err := q("the site's default CPU", cfg.DefaultCPU)
	if err != nil {
		return r, err
	}

	switch {
	case memLimit == nil && memReq == nil:
		memLimit, memReq = defMem, defMem
	case memReq == nil:
		memReq = memLimit
	case memLimit == nil && defMem != nil:
		// A request alone gets the default limit, raised to the request.
		memLimit = defMem
		if memReq.Cmp(*defMem) > 0 {
			memLimit = memReq
		}
	}
	if memLimit != nil && memReq.Cmp(*memLimit) > 0 {
		return r, fmt.Errorf("kubernetes_memory_request %s is above kubernetes_memory_limit %s", memReq, memLimit)
	}
	if cpuReq == nil {
		cpuReq = defCPU
		if cpuLimit != nil && (cpuReq == nil || cpuReq.Cmp(*cpuLimit) > 0) {
			cpuReq = cpuLimit
		}
	}
	if cpuLimit != nil && cpuReq.Cmp(*cpuLimit) > 0 {
		return r, fmt.Errorf("kubernetes_cpu_request %s is above kubernetes_cpu_limit %s", cpuReq, cpuLimit)
	}

	for _, c := range []struct {
		field, max string
		v          *resource.Quantity
	}{
		{"kubernetes_memory_limit", cfg.MaxMemory, memLimit},
		{"kubernetes_memory_request", cfg.MaxMemory, memReq},
		{"kubernetes_cpu_limit", cfg.MaxCPU, cpuLimit},
		{"kubernetes_cpu_request", cfg.MaxCPU, cpuReq},
	} {
		if c.v == nil || c.max == "" {
			continue
		}
		m, err := resource.ParseQuantity(c.max)
		if err != nil {
			return r, fmt.Errorf("the site's maximum %q is not a Kubernetes quantity", c.max)
		}
		if c.v.Cmp(m) > 0 {
			return r, fmt.Errorf("%s %s is above this site's maximum of %s", c.field, c.v, c.max)
		}
	}

	if memLimit == nil && cfg.MaxMemory != "" {
		// No step is left without a memory limit when the site has a
		// maximum: "within the site's limits" must hold for what a step
		// uses, not only for what it asks (its request, checked above, is
		// within it). Without a request of its own the step reserves 0,
		// explicitly: Kubernetes would otherwise copy the limit into the
		// request and reserve the whole maximum on a node.
		m, err := resource.ParseQuantity(cfg.MaxMemory)
		if err != nil {
			return r, fmt.Errorf("the site's maximum %q is not a Kubernetes quantity", cfg.MaxMemory)
		}
		memLimit = &m
		if memReq == nil {
			zero := resource.MustParse("0")
			memReq = &zero
		}
	}

	add := func(l *corev1.ResourceList, name corev1.ResourceName, v *resource.Quantity) {
		if v == nil {
			return
		}
		if *l == nil {
			*l = corev1.ResourceList{}
		}
		(*l)[name] = *v
	}
	add(&r.Requests, corev1.ResourceMemory, memReq)
	add(&r.Limits, corev1.ResourceMemory, memLimit)
	add(&r.Requests, corev1.ResourceCPU, cpuReq)
	add(&r.Limits, corev1.ResourceCPU, cpuLimit)
	return r, nil
}

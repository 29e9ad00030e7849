package batch

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MemoryMB converts a Kubernetes-style quantity ("512Mi", "2Gi", "1G",
// "300M", plain bytes), as REANA's kubernetes_memory_limit gives it, to
// whole MiB, rounding up: what Slurm's --mem and HTCondor's request_memory
// take, so a step asks every batch system for the same.
func MemoryMB(q string) (int64, error) {
	s := strings.TrimSpace(q)
	units := []struct {
		suffix string
		mult   float64
	}{
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
		{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
	}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("memory %q is not a quantity such as 512Mi or 2Gi", q)
	}
	mb := math.Ceil(v * mult / (1 << 20))
	if mb > math.MaxInt32 {
		return 0, fmt.Errorf("memory %q is larger than any machine", q)
	}
	return max(int64(mb), 1), nil
}

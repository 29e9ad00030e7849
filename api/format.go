package api

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

var errEOF = io.EOF

// reanaTime formats timestamps as REANA does: server local time, no zone.
func reanaTime(t time.Time) string { return t.Local().Format("2006-01-02T15:04:05") }

// timeStr is reanaTime of an optional time: null when unset.
func timeStr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := reanaTime(*t)
	return &s
}

// HumanBytes renders sizes as REANA does: base 1024, up to two decimals,
// trailing zeros dropped ("0 Bytes", "766 KiB", "1.5 MiB").
func HumanBytes(n int64) string {
	if n < 1024 {
		if n == 1 {
			return "1 Byte"
		}
		return strconv.FormatInt(n, 10) + " Bytes"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n)
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + " " + units[i]
}

// HumanMillis renders CPU time as REANA does ("1h 2m 3s", "0s").
func HumanMillis(ms int64) string {
	secs := ms / 1000
	h, m, s := secs/3600, (secs/60)%60, secs%60
	var parts []string
	if h > 0 {
		parts = append(parts, fmt.Sprintf("%dh", h))
	}
	if m > 0 {
		parts = append(parts, fmt.Sprintf("%dm", m))
	}
	if s > 0 || len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%ds", s))
	}
	return strings.Join(parts, " ")
}

// sizeResponse is REANA's size object.
type sizeResponse struct {
	Raw           int64  `json:"raw"`
	HumanReadable string `json:"human_readable"`
}

func sizeObj(n int64) sizeResponse {
	return sizeResponse{Raw: n, HumanReadable: HumanBytes(n)}
}

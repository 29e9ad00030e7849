package kubelet

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// LogBuffer is a container's log: what its process wrote to stdout and
// stderr, the last 16 MiB of it.
type LogBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const maxLog = 16 << 20

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*maxLog {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-maxLog:]...)
	}
	return len(p), nil
}

// Set replaces the log, for tests that give a pod its output.
func (b *LogBuffer) Set(text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = []byte(text)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) > maxLog {
		return string(b.buf[len(b.buf)-maxLog:])
	}
	return string(b.buf)
}

// Tail is the end of the log the kubelet uses as the termination message
// of a failed container (FallbackToLogsOnError): the last lines lines, at
// most bytes bytes.
func (b *LogBuffer) Tail(lines, bytes int) string {
	text := tailLines(b.String(), lines)
	if len(text) > bytes {
		text = text[len(text)-bytes:]
	}
	return text
}

// Select is the part of a container's log a pods/log request asks for,
// or the kubelet's refusal (a bad request): a container that has not
// started has no log, and its message names the waiting reason
// (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#read-log-of-the-specified-pod).
// tailLines and limitBytes are supported; follow, previous, sinceSeconds
// and timestamps are not.
func Select(pod *corev1.Pod, container, text string, q url.Values) (string, error) {
	if reason, waiting := waitingReason(pod, container); waiting {
		return "", fmt.Errorf("container %q in pod %q is waiting to start: %s", container, pod.Name, reason)
	}
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return "", fmt.Errorf("tailLines: must be a non-negative integer")
		}
		text = tailLines(text, n)
	}
	if v := q.Get("limitBytes"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return "", fmt.Errorf("limitBytes: must be greater than 0")
		}
		text = text[:min(n, len(text))]
	}
	return text, nil
}

// waitingReason tells whether the container has not started, and why. A
// pod whose status says nothing of the container counts as started once
// its phase says so (tests that set statuses by hand).
func waitingReason(pod *corev1.Pod, container string) (string, bool) {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != container {
			continue
		}
		switch {
		case cs.State.Running != nil || cs.State.Terminated != nil:
			return "", false
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			return cs.State.Waiting.Reason, true
		}
	}
	switch pod.Status.Phase {
	case corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed:
		return "", false
	}
	return "ContainerCreating", true
}

func tailLines(text string, n int) string {
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

package kubernetes

import (
	"context"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/reana-site/reana-site/batch"
)

// Logs implements batch.Backend: the step container's output, its last
// MaxLogBytes when longer (the end is where errors are). Why a step
// failed is its Status.Reason, which the engine appends, so it is not
// repeated here. A container that never started has no output.
func (b *Backend) Logs(ctx context.Context, j batch.Job) (string, error) {
	r := b.ref(j)
	stream, err := b.api.PodLogs(ctx, r.Namespace, r.Pod, &corev1.PodLogOptions{Container: ContainerName})
	switch {
	case apierrors.IsNotFound(err):
		if d, ok := b.recall(b.decided, r.Pod); ok && d.status.State == batch.Failed && !d.deleteAfterLogs {
			// The backend failed the step before its container ran and
			// deleted the pod itself: there was no output to lose.
			return "", nil
		}
		return "", fmt.Errorf("kubernetes: pod %s/%s no longer exists, so the step's output is gone", r.Namespace, r.Pod)
	case apierrors.IsBadRequest(err) && neverStarted(err):
		return "", nil
	case err != nil:
		return "", b.apiError("read the output of pod "+r.Pod, err)
	}
	text, truncated, err := tail(stream, MaxLogBytes)
	stream.Close()
	if err != nil {
		return "", b.apiError("read the output of pod "+r.Pod, err)
	}
	if d, ok := b.recall(b.decided, r.Pod); ok && d.deleteAfterLogs {
		// The step's container has ended, another container keeps the
		// pod running: with the output read, the pod may go.
		if err := b.api.DeletePod(ctx, r.Namespace, r.Pod); err != nil && !apierrors.IsNotFound(err) {
			b.log.Warn("could not delete the pod of an ended step; the janitor tries again", "pod", r.Pod, "err", err)
		}
	}
	if truncated {
		return batch.TruncatedNote + text, nil
	}
	return text, nil
}

// neverStarted recognises the kubelet's answer for a container that has
// no output because it never ran.
func neverStarted(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "waiting to start") || strings.Contains(msg, "ContainerCreating") || strings.Contains(msg, "PodInitializing")
}

// tail reads r to its end and keeps the last n bytes.
func tail(r io.Reader, n int) (string, bool, error) {
	buf := make([]byte, 0, 64<<10)
	chunk := make([]byte, 32<<10)
	truncated := false
	for {
		k, err := r.Read(chunk)
		buf = append(buf, chunk[:k]...)
		if len(buf) > 2*n {
			buf = append(buf[:0], buf[len(buf)-n:]...)
			truncated = true
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", false, err
		}
	}
	if len(buf) > n {
		buf, truncated = buf[len(buf)-n:], true
	}
	return string(buf), truncated, nil
}

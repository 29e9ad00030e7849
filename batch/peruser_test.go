package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
)

func jobsOf(uids ...uint32) []Job {
	var js []Job
	for i, u := range uids {
		js = append(js, Job{Spec: Spec{JobID: string(rune('a' + i)), User: asuser.Account{UID: u}}})
	}
	return js
}

func TestEachUserGroupsJobsByUser(t *testing.T) {
	var mu sync.Mutex
	got := map[uint32]int{}
	err := EachUser(context.Background(), jobsOf(1, 2, 1, 3, 1), func(_ context.Context, js []Job) error {
		mu.Lock()
		defer mu.Unlock()
		for _, j := range js {
			assert.Equal(t, js[0].Spec.User.UID, j.Spec.User.UID)
		}
		got[js[0].Spec.User.UID] += len(js)
		return nil
	})
	assert.NoError(t, err)
	assert.Equal(t, map[uint32]int{1: 3, 2: 1, 3: 1}, got)
}

func TestEachUserDoesNotWaitForOneUserInTurn(t *testing.T) {
	release := make(chan struct{})
	done := make(chan uint32, 3)
	go func() {
		_ = EachUser(context.Background(), jobsOf(1, 2, 3), func(_ context.Context, js []Job) error {
			if js[0].Spec.User.UID == 1 {
				<-release // a helper that hangs
			}
			done <- js[0].Spec.User.UID
			return nil
		})
	}()
	for i := 0; i < 2; i++ {
		select {
		case u := <-done:
			assert.NotEqual(t, uint32(1), u)
		case <-time.After(10 * time.Second):
			t.Fatal("the other users waited for the hanging one")
		}
	}
	close(release)
}

func TestEachUserReturnsAnError(t *testing.T) {
	boom := errors.New("boom")
	err := EachUser(context.Background(), jobsOf(1, 2), func(_ context.Context, js []Job) error {
		if js[0].Spec.User.UID == 2 {
			return boom
		}
		return nil
	})
	assert.ErrorIs(t, err, boom)
}

func TestSubmitConcurrentlyBoundsAndKeepsOrder(t *testing.T) {
	var inFlight, most atomic.Int32
	specs := make([]Spec, 40)
	for i := range specs {
		specs[i].JobID = fmt.Sprint(i)
	}
	out := SubmitConcurrently(context.Background(), specs, 4, func(_ context.Context, s Spec) (Handle, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		if s.JobID == "7" {
			return Handle{}, errors.New("quota exceeded")
		}
		return Handle{ID: "pod-" + s.JobID}, nil
	})
	require.Len(t, out, 40)
	for i, o := range out {
		if i == 7 {
			assert.EqualError(t, o.Err, "quota exceeded")
			continue
		}
		assert.Equal(t, fmt.Sprint("pod-", i), o.Handle.ID)
	}
	assert.LessOrEqual(t, most.Load(), int32(4))
}

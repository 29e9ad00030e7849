package batch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/reana-site/reana-site/asuser"
	"github.com/stretchr/testify/assert"
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

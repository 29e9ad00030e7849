package batch

import (
	"context"
	"sync"
)

// UserParallelism bounds how many users' helper processes one status round
// runs at once.
const UserParallelism = 8

// EachUser calls fn once per user with that user's jobs, for several users
// at once, so one user whose helper hangs does not hold up the others. It
// returns the first error; fn must be safe for concurrent use.
func EachUser(ctx context.Context, jobs []Job, fn func(ctx context.Context, jobs []Job) error) error {
	byUser := map[uint32][]Job{}
	var order []uint32
	for _, j := range jobs {
		uid := j.Spec.User.UID
		if _, ok := byUser[uid]; !ok {
			order = append(order, uid)
		}
		byUser[uid] = append(byUser[uid], j)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, UserParallelism)
	for _, uid := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func(js []Job) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, js); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}(byUser[uid])
	}
	wg.Wait()
	return firstErr
}

// SubmitConcurrently submits specs with at most n submissions in flight,
// for backends whose submissions are independent requests (Kubernetes pod
// creates), and answers in the order of specs.
func SubmitConcurrently(ctx context.Context, specs []Spec, n int, submit func(context.Context, Spec) (Handle, error)) []Submitted {
	out := make([]Submitted, len(specs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(n, 1))
	for i, s := range specs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i].Handle, out[i].Err = submit(ctx, s)
		}()
	}
	wg.Wait()
	return out
}

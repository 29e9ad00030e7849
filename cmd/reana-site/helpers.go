package main

import (
	"time"

	"github.com/reana-site/reana-site/asuser"
)

// apiHelperWait is how long an API request waits for one of its user's
// helpers to end before it is answered 429: long enough to ride out a
// burst of quick calls (a `reana-client upload` of many small files), short
// enough that a flood of stalled uploads is refused rather than queued.
const apiHelperWait = 2 * time.Second

// helperBudgets are the two ways to a helper, each with its own per-user
// bound over the same runner.
//
// The API's refuses after a short wait: the caller is a client that can
// try again, and a request that queued instead would keep its connection
// and memory while it waits, which is the exhaustion the bound prevents.
//
// The engine's and the backends' waits as long as the context allows,
// and is separate so that a user who fills the API's budget (stalled
// uploads) cannot make the engine's work fail or wait: a step's submission
// or a status poll that failed for being busy would fail a workflow for no
// reason of its own. The engine is serial, so it rarely holds more than a
// few helpers per user; its bound only caps a runaway.
type helperBudgets struct {
	api    *asuser.Limiter
	engine *asuser.Limiter
}

func limitHelpers(r asuser.Opener, perUser int) helperBudgets {
	return helperBudgets{
		api:    &asuser.Limiter{Next: r, Max: perUser, Wait: apiHelperWait},
		engine: &asuser.Limiter{Next: r, Max: perUser},
	}
}

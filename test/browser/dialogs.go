package browser

import (
	"sync"
	"sync/atomic"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// dialogs answers the tab's JavaScript dialogs once a test asked for it.
type dialogs struct {
	start  sync.Once
	accept atomic.Bool
	mu     sync.Mutex
	seen   []string
}

// AnswerDialogs makes the tab accept (or dismiss) every alert, confirm()
// and prompt from now on; calling it again changes the answer. A dialog
// that nobody answers blocks the page and the click that opened it, so a
// test clicks a button that asks confirm() only after this.
func (b *Browser) AnswerDialogs(accept bool) {
	d := b.dialogs
	d.accept.Store(accept)
	d.start.Do(func() {
		opening := chromedp.Events(b.ctx, cdppage.JavascriptDialogOpening)
		go func() {
			for ev, err := range opening {
				if err != nil {
					return
				}
				d.mu.Lock()
				d.seen = append(d.seen, ev.Message)
				d.mu.Unlock()
				// The tab may be gone by now; nothing is left to answer then.
				_, _ = chromedp.Call(b.ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: d.accept.Load()})
			}
		}()
	})
}

// Dialogs are the messages of the dialogs answered so far.
func (b *Browser) Dialogs() []string {
	b.dialogs.mu.Lock()
	defer b.dialogs.mu.Unlock()
	return append([]string(nil), b.dialogs.seen...)
}

package containers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"

	"github.com/reana-site/reana-site/asuser"
)

// ErrNotFound marks an image that is in none of the places looked at;
// errors.Is matches a *NotFoundError with it.
var ErrNotFound = errors.New("image not found")

// NotFoundError says which image is missing and where it was looked for.
type NotFoundError struct {
	Image  string
	Places []string
	// NoPull is set when the site will not pull it either.
	NoPull bool
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("image %q not found", e.Image)
	if len(e.Places) == 0 {
		msg += ": this site has no image cache or unpacked image tree"
	} else {
		msg += " in " + strings.Join(e.Places, ", ")
	}
	if e.NoPull {
		msg += "; this site does not pull images"
	}
	return msg
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Resolver finds step images and pulls missing ones, one pull per image
// at a time: concurrent callers wanting the same image wait for the pull
// in progress and use its result.
type Resolver struct {
	Config Config
	Runner asuser.Caller

	mu    sync.Mutex
	pulls map[string]chan struct{} // by destination path; a token channel of size 1
}

// probeScript prints "f <path>" or "d <path>" for each of its arguments
// that is a file or a directory (following symlinks, as the CVMFS layout
// needs). It is a fixed text; the paths arrive as arguments, never as
// shell code.
const probeScript = `for p; do if [ -f "$p" ]; then echo "f $p"; elif [ -d "$p" ]; then echo "d $p"; fi; done`

type candidate struct {
	path, source string
	wantDir      bool // SourceUnpacked: a directory; cache: a .sif file or a directory
}

func (r *Resolver) candidates(img Image, acct asuser.Account) []candidate {
	if img.IsPath() {
		return []candidate{{path: img.Path, source: "path"}}
	}
	var out []candidate
	for _, o := range r.Config.order() {
		switch o {
		case SourceCache:
			if dir := r.Config.CacheDir(acct); dir != "" {
				out = append(out,
					candidate{path: filepath.Join(dir, img.CacheName()+".sif"), source: SourceCache},
					candidate{path: filepath.Join(dir, img.CacheName()), source: SourceCache, wantDir: true})
			}
		case SourceUnpacked:
			for _, root := range r.Config.UnpackedRoots {
				out = append(out, candidate{path: img.UnpackedPath(root), source: SourceUnpacked, wantDir: true})
			}
		}
	}
	return out
}

// probe asks, as the user, which candidates exist, in one helper call.
func (r *Resolver) probe(ctx context.Context, acct asuser.Account, cands []candidate) (map[string]byte, error) {
	argv := []string{"/bin/sh", "-c", probeScript, "probe"}
	for _, c := range cands {
		argv = append(argv, c.path)
	}
	res, err := asuser.Exec(ctx, r.Runner, acct, asuser.ExecArgs{Argv: argv, Dir: "/"})
	if err != nil {
		return nil, fmt.Errorf("look for the image as %s: %w", acct.Name, err)
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("look for the image as %s: exit status %d: %s", acct.Name, res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	found := map[string]byte{}
	sc := bufio.NewScanner(strings.NewReader(res.Stdout))
	for sc.Scan() {
		if kind, p, ok := strings.Cut(sc.Text(), " "); ok && len(kind) == 1 {
			found[p] = kind[0]
		}
	}
	return found, nil
}

// locate returns the first candidate that exists, or ErrNotFound with
// the places looked at.
func (r *Resolver) locate(ctx context.Context, img Image, acct asuser.Account) (Resolved, error) {
	cands := r.candidates(img, acct)
	if len(cands) == 0 {
		return Resolved{}, &NotFoundError{Image: img.String()}
	}
	found, err := r.probe(ctx, acct, cands)
	if err != nil {
		return Resolved{}, err
	}
	var places []string
	for _, c := range cands {
		kind := found[c.path]
		if kind == 'd' || (kind == 'f' && !c.wantDir) {
			return Resolved{Image: img, Path: c.path, Source: c.source}, nil
		}
		places = append(places, c.path)
	}
	return Resolved{}, &NotFoundError{Image: img.String(), Places: places}
}

// Check tells whether the step's image can be used without running
// anything: found now, or missing but pullable. The API calls it at start
// so that a missing image is refused before any job is submitted.
func (r *Resolver) Check(ctx context.Context, environment string, acct asuser.Account) error {
	img, err := ParseImage(environment)
	if err != nil {
		return err
	}
	_, err = r.locate(ctx, img, acct)
	if errors.Is(err, ErrNotFound) && !img.IsPath() && r.Config.CanPull() {
		return nil
	}
	return r.explain(err)
}

// explain adds to a not-found error that no pull will follow.
func (r *Resolver) explain(err error) error {
	var nf *NotFoundError
	if errors.As(err, &nf) && !r.Config.CanPull() {
		nf.NoPull = true
	}
	return err
}

// Resolve finds the step's image, pulling it into the cache when it is
// missing and the site allows pulls. What the pull prints goes to log
// (nil discards it), so the step's log shows it.
func (r *Resolver) Resolve(ctx context.Context, environment string, acct asuser.Account, log io.Writer) (Resolved, error) {
	if log == nil {
		log = io.Discard
	}
	img, err := ParseImage(environment)
	if err != nil {
		return Resolved{}, err
	}
	res, err := r.locate(ctx, img, acct)
	if err == nil || !errors.Is(err, ErrNotFound) || img.IsPath() || !r.Config.CanPull() {
		return res, r.explain(err)
	}
	dest := filepath.Join(r.Config.CacheDir(acct), img.CacheName()+".sif")
	unlock, err := r.lockPull(ctx, dest)
	if err != nil {
		return Resolved{}, fmt.Errorf("wait for the pull of %s: %w", img, err)
	}
	defer unlock()
	// Whoever held the lock before may have pulled it meanwhile.
	if res, err := r.locate(ctx, img, acct); !errors.Is(err, ErrNotFound) {
		return res, err
	}
	if err := r.pull(ctx, img, dest, acct, log); err != nil {
		return Resolved{}, err
	}
	return Resolved{Image: img, Path: dest, Source: SourcePull}, nil
}

// ownDirScript makes its argument a directory of the calling user's own,
// mode 0700, and fails when it is anything else: in a shared image cache
// another user could have made it first, and a pull through their
// directory would use blobs they chose. Fixed text; the path is "$1".
const ownDirScript = `mkdir -p -m 0700 -- "$1" && [ -d "$1" ] && [ ! -L "$1" ] && [ -O "$1" ] && chmod 0700 -- "$1" || { echo "$1 is not a directory of this user's own" >&2; exit 1; }`

func (r *Resolver) pull(ctx context.Context, img Image, dest string, acct asuser.Account, log io.Writer) error {
	run := func(env []string, argv ...string) (asuser.ExecResult, error) {
		res, err := asuser.Exec(ctx, r.Runner, acct, asuser.ExecArgs{Argv: argv, Dir: "/", Env: env})
		return res, err
	}
	dir := filepath.Dir(dest)
	if res, err := run(nil, "mkdir", "-p", "--", dir); err != nil || res.ExitCode != 0 {
		return fmt.Errorf("create the image cache %s as %s: %s", dir, acct.Name, failure(res, err))
	}
	cache := r.Config.PullCacheDir(acct)
	if res, err := run(nil, "/bin/sh", "-c", ownDirScript, "own-dir", cache); err != nil || res.ExitCode != 0 {
		return fmt.Errorf("prepare the pull cache %s as %s: %s", cache, acct.Name, failure(res, err))
	}
	fmt.Fprintf(log, "reana-site: pulling image %s into %s\n", img.PullURI(), dest)
	res, err := run([]string{"APPTAINER_CACHEDIR=" + cache}, r.Config.apptainer(), "pull", dest, img.PullURI())
	if out := strings.TrimSpace(res.Stdout + res.Stderr); out != "" {
		fmt.Fprintln(log, out)
	}
	if err != nil || res.ExitCode != 0 {
		return fmt.Errorf("pull %s as %s: %s", img.PullURI(), acct.Name, failure(res, err))
	}
	return nil
}

func failure(res asuser.ExecResult, err error) string {
	if err != nil {
		return err.Error()
	}
	msg := strings.TrimSpace(res.Stderr)
	if i := strings.LastIndex(msg, "\n"); i >= 0 {
		msg = msg[i+1:] // Apptainer's FATAL line comes last
	}
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", res.ExitCode)
	}
	return msg
}

// lockPull takes the per-destination pull lock, giving up when ctx ends.
func (r *Resolver) lockPull(ctx context.Context, dest string) (func(), error) {
	r.mu.Lock()
	if r.pulls == nil {
		r.pulls = map[string]chan struct{}{}
	}
	ch, ok := r.pulls[dest]
	if !ok {
		ch = make(chan struct{}, 1)
		r.pulls[dest] = ch
	}
	r.mu.Unlock()
	select {
	case ch <- struct{}{}:
		// The entry stays in the map: one small channel per image pulled
		// since start, which is bounded by the images the site uses.
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

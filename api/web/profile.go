package web

import (
	"context"
	"net/http"
	"os/user"
	"sort"
	"strconv"
	"time"

	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/store"
)

// profileData is who the signed-in user is and what they use.
type profileData struct {
	Name, Email, Home string
	UID, GID          uint32
	Groups            []string
	DiskUsed          int64
	DiskQuota         int64
	DiskPct           int
	CPUMillis         int64
	Token             *store.Token // the newest valid one, if any
	NewToken          string       // shown once, right after a rotate
	ServerURL         string
	Health            string
}

func (s *Server) profile(ctx context.Context, v viewer) (profileData, error) {
	d := profileData{Name: v.User.Name, Email: v.User.Email, Home: v.Account.Home, UID: v.Account.UID, GID: v.Account.GID,
		DiskQuota: s.API.Config.DiskQuotaBytes, ServerURL: s.Config.PublicURL, Health: "healthy"}
	d.Groups = groupNames(append([]uint32{v.Account.GID}, v.Account.Groups...))
	var err error
	if d.DiskUsed, err = s.API.DB.UserDiskUsage(ctx, v.User.ID); err != nil {
		return d, err
	}
	if d.CPUMillis, err = s.API.DB.UserCPUMillis(ctx, v.User.ID); err != nil {
		return d, err
	}
	if d.DiskQuota > 0 {
		d.DiskPct = int(min(100, d.DiskUsed*100/d.DiskQuota))
		switch {
		case d.DiskUsed >= d.DiskQuota:
			d.Health = "critical"
		case d.DiskUsed*10 >= d.DiskQuota*8:
			d.Health = "warning"
		}
	}
	d.Token, err = s.newestToken(ctx, v.User.ID)
	return d, err
}

// newestToken is the user's newest token that still works.
func (s *Server) newestToken(ctx context.Context, userID string) (*store.Token, error) {
	tokens, err := s.API.DB.ListTokens(ctx, userID)
	if err != nil {
		return nil, err
	}
	for i := len(tokens) - 1; i >= 0; i-- {
		if tokens[i].RevokedAt == nil {
			return &tokens[i], nil
		}
	}
	return nil, nil
}

// groupNames names gids, in order, each once; an unnamed one as its number.
func groupNames(gids []uint32) []string {
	seen := map[uint32]bool{}
	var out []string
	for _, g := range gids {
		if seen[g] {
			continue
		}
		seen[g] = true
		id := strconv.FormatUint(uint64(g), 10)
		if gr, err := user.LookupGroupId(id); err == nil {
			out = append(out, gr.Name+" ("+id+")")
		} else {
			out = append(out, id)
		}
	}
	return out
}

func (s *Server) profilePage(w http.ResponseWriter, r *http.Request) {
	d, err := s.profile(r.Context(), viewerOf(r))
	if err != nil {
		s.internal(w, r, "show your profile", err)
		return
	}
	s.page(w, r, http.StatusOK, "profile", "Profile", d)
}

// rotateToken gives the user a new token, ending the old ones, and shows
// it on this one answer (never stored, logged or put in a URL).
func (s *Server) rotateToken(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	token, _, err := identity.IssueToken(r.Context(), s.API.DB, v.User.ID, store.TokenRotate)
	if err != nil {
		s.internal(w, r, "make you a new token", err)
		return
	}
	s.Log.Info("token rotated on the web", "user", v.User.Name)
	d, err := s.profile(r.Context(), v)
	if err != nil {
		s.internal(w, r, "show your profile", err)
		return
	}
	d.NewToken = token
	s.page(w, r, http.StatusOK, "profile", "Profile", d)
}

// adminUser is one user on the admin page.
type adminUser struct {
	Name       string
	UID        uint32
	Removed    bool
	TokenHint  string
	TokenAge   time.Duration
	HasToken   bool
	ActiveRuns int
	DiskUsed   int64
	QuotaPct   int
}

// adminData is the read-only admin page.
type adminData struct {
	Users     []adminUser
	Backends  []backendCount
	Runs      map[string]int
	DiskQuota int64
	// HasChecks: the site gave its health checks (Config.Checks).
	HasChecks bool
	Checks    []Check
}

type backendCount struct {
	Backend          string
	Running, Waiting int
}

func (s *Server) adminPage(w http.ResponseWriter, r *http.Request) {
	if !s.isAdmin(viewerOf(r).Account) {
		s.errorPage(w, r, http.StatusForbidden, "For admins only", "This page is for root and the members of the site's admin groups (REANA_SITE_ADMIN_GROUPS). Ask the site's admins if you need it.")
		return
	}
	d, err := s.admin(r.Context())
	if err != nil {
		s.internal(w, r, "show the admin page", err)
		return
	}
	s.page(w, r, http.StatusOK, "admin", "Admin", d)
}

func (s *Server) admin(ctx context.Context) (adminData, error) {
	db := s.API.DB
	d := adminData{DiskQuota: s.API.Config.DiskQuotaBytes, Runs: map[string]int{}}
	users, err := db.ListUsers(ctx)
	if err != nil {
		return d, err
	}
	active, err := db.ActiveWorkflows(ctx)
	if err != nil {
		return d, err
	}
	perUser := map[string]int{}
	for _, wf := range active {
		perUser[wf.OwnerID]++
		d.Runs[string(wf.Status)]++
	}
	for _, u := range users {
		au := adminUser{Name: u.Name, UID: u.UID, Removed: u.RemovedAt != nil, ActiveRuns: perUser[u.ID]}
		t, err := s.newestToken(ctx, u.ID)
		if err != nil {
			return d, err
		}
		if t != nil {
			au.HasToken, au.TokenHint, au.TokenAge = true, t.Hint, time.Since(t.CreatedAt)
		}
		if au.DiskUsed, err = db.UserDiskUsage(ctx, u.ID); err != nil {
			return d, err
		}
		if d.DiskQuota > 0 {
			au.QuotaPct = int(min(100, au.DiskUsed*100/d.DiskQuota))
		}
		d.Users = append(d.Users, au)
	}
	counts, err := db.Count(ctx)
	if err != nil {
		return d, err
	}
	byBackend := map[string]*backendCount{}
	for k, n := range counts.Jobs {
		b := byBackend[k.Backend]
		if b == nil {
			b = &backendCount{Backend: backendLabel(k.Backend)}
			byBackend[k.Backend] = b
		}
		switch k.Status {
		case store.JobRunning:
			b.Running += n
		case store.JobCreated, store.JobSubmitting:
			b.Waiting += n
		}
	}
	for _, b := range byBackend {
		d.Backends = append(d.Backends, *b)
	}
	sort.Slice(d.Backends, func(i, k int) bool { return d.Backends[i].Backend < d.Backends[k].Backend })
	if s.Config.Checks != nil {
		d.HasChecks, d.Checks = true, s.Config.Checks(ctx)
	}
	return d, nil
}

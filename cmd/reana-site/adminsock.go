package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/reana-site/reana-site/api/localsock"
)

// adminRequest is one `reana-site admin` command line, sent to the daemon.
type adminRequest struct {
	Args []string `json:"args"`
}

// adminAnswer is what the command printed and how it ended.
type adminAnswer struct {
	Output string `json:"output"`
	Error  string `json:"error,omitempty"`
	Usage  bool   `json:"usage,omitempty"`
}

// adminViaSocket runs the command in the daemon; ok is false when no daemon
// answers on the socket (the caller then works on the store itself).
func adminViaSocket(socket string, args []string) (adminAnswer, bool) {
	client := localsock.Client(socket, time.Minute)
	body, _ := json.Marshal(adminRequest{Args: args})
	resp, err := client.Post("http://reana-site/admin", "application/json", bytes.NewReader(body))
	if err != nil {
		return adminAnswer{}, false
	}
	defer resp.Body.Close()
	var a adminAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&a); err != nil {
		return adminAnswer{Error: fmt.Sprintf("read the daemon's answer: %v", err)}, true
	}
	return a, true
}

func serveAdmin(ctx context.Context, ln net.Listener, d adminDeps, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin", func(w http.ResponseWriter, r *http.Request) {
		if cred, ok := localsock.Peer(r); !ok || cred.Uid != 0 {
			http.Error(w, "admin commands are for root", http.StatusForbidden)
			return
		}
		var req adminRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || len(req.Args) < 2 {
			writeAdmin(w, adminAnswer{Error: "usage: reana-site admin NOUN VERB [ARGS]", Usage: true})
			return
		}
		var out bytes.Buffer
		err := adminCmd(r.Context(), &out, d, req.Args[0], req.Args[1], req.Args[2:])
		a := adminAnswer{Output: out.String()}
		if err != nil {
			var ue usageError
			a.Error, a.Usage = err.Error(), errors.As(err, &ue)
		}
		log.Info("admin command", "args", req.Args[:2], "ok", err == nil)
		writeAdmin(w, a)
	})
	if err := localsock.Serve(ctx, ln, mux); err != nil {
		log.Error("admin socket", "err", err)
	}
}

func writeAdmin(w http.ResponseWriter, a adminAnswer) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a)
}

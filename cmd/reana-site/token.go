package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/reana-site/reana-site/api/localsock"
	"github.com/reana-site/reana-site/api/tokensock"
	"github.com/reana-site/reana-site/daemon/config"
)

// token asks the local daemon for the caller's own access token. The
// daemon learns who is asking from the kernel, not from this program.
func token(args []string) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	rotate := fs.Bool("rotate", false, "replace your token with a new one (the old one stops working)")
	revoke := fs.Bool("revoke", false, "revoke your token")
	socket := fs.String("socket", socketPath(), "the daemon's token socket")
	server := fs.String("server", "", "get a new token from this server (https://host:port) with your Kerberos ticket instead")
	spn := fs.String("spn", "", "with --server: the server's service principal (default HTTP/<the server's host>)")
	cacert := fs.String("cacert", "", "with --server: a PEM file of the CA (or the self-signed certificate) to trust")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *server != "" {
		if *revoke {
			fmt.Fprintln(os.Stderr, "reana-site token: --revoke works on the local socket only")
			return 2
		}
		a, err := serverToken(context.Background(), *server, *spn, *cacert)
		if err != nil {
			fmt.Fprintln(os.Stderr, "reana-site token:", err)
			return 1
		}
		fmt.Println(a.Token)
		fmt.Fprint(os.Stderr, a.Message+"\n"+a.Export)
		return 0
	}
	action := tokensock.ActionIssue
	switch {
	case *rotate && *revoke:
		fmt.Fprintln(os.Stderr, "reana-site token: --rotate and --revoke exclude each other")
		return 2
	case *rotate:
		action = tokensock.ActionRotate
	case *revoke:
		action = tokensock.ActionRevoke
	}
	a, err := askToken(*socket, action)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reana-site token:", err)
		return 1
	}
	if a.Token != "" {
		fmt.Println(a.Token)
		return 0
	}
	fmt.Fprintln(os.Stderr, a.Message)
	return 0
}

func socketPath() string {
	if p := os.Getenv(config.Prefix + "_TOKEN_SOCKET"); p != "" {
		return p
	}
	return "/run/reana-site/token.sock"
}

func askToken(socket, action string) (tokensock.Answer, error) {
	return askSocket(socket, "/token?action="+action)
}

// loginLink asks the local daemon for a one-time link that signs the
// caller in to the web pages.
func loginLink(args []string) int {
	fs := flag.NewFlagSet("login-link", flag.ContinueOnError)
	socket := fs.String("socket", socketPath(), "the daemon's token socket")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	a, err := askSocket(*socket, "/login-link")
	if err != nil {
		fmt.Fprintln(os.Stderr, "reana-site login-link:", err)
		return 1
	}
	fmt.Println(a.Link)
	fmt.Fprintln(os.Stderr, a.Message)
	return 0
}

// askSocket posts to path on the daemon's token socket.
func askSocket(socket, path string) (tokensock.Answer, error) {
	client := localsock.Client(socket, 30*time.Second)
	resp, err := client.Post("http://reana-site"+path, "application/json", nil)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return tokensock.Answer{}, fmt.Errorf("no reana-site daemon answers on %s (is self-service on, and the daemon running?)", socket)
		}
		return tokensock.Answer{}, fmt.Errorf("ask the daemon on %s: %w", socket, err)
	}
	defer resp.Body.Close()
	var a tokensock.Answer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&a); err != nil {
		return a, fmt.Errorf("read the daemon's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return a, errors.New(a.Message)
	}
	return a, nil
}

package kubenode_test

import (
	"context"
	"os"
	"strconv"
	"syscall"

	"github.com/reana-site/reana-site/asuser"
)

// secretsReader answers secrets.read as the user's helper would.
type secretsReader []asuser.Secret

func (r secretsReader) Call(_ context.Context, _ asuser.Account, _ asuser.Op, _, result any) error {
	*(result.(*[]asuser.Secret)) = r
	return nil
}

func owner(fi os.FileInfo) string {
	return strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid))
}

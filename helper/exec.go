package helper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"

	"github.com/reana-site/reana-site/asuser"
)

// execCommand runs a program (a batch-system command) and reports its exit
// status and output; a non-zero status is a result, not an error.
func execCommand(ctx context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.ExecArgs](raw)
	if err != nil {
		return nil, err
	}
	if len(a.Argv) == 0 {
		return nil, asuser.Errorf(asuser.KindInternal, "exec: empty argument vector")
	}
	cmd := exec.CommandContext(ctx, a.Argv[0], a.Argv[1:]...)
	cmd.Dir = a.Dir
	cmd.Env = append(os.Environ(), a.Env...)
	cmd.Stdin = strings.NewReader(a.Stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	res := asuser.ExecResult{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	case err != nil:
		return nil, fmt.Errorf("exec %s: %w", a.Argv[0], err)
	}
	return res, nil
}

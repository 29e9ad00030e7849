package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strings"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/helper/wsfs"
)

// secretsTrusted is where the checks of the way to the user's secret
// directory start, from the site's REANA_SITE_SECRETS_ROOT template.
func secretsTrusted() string {
	return asuser.TrustedPrefix(os.Getenv(asuser.SecretsTemplateEnv), os.Getenv("HOME"))
}

// secretTypes are the subdirectories of a secret directory, one per type.
var secretTypes = []string{asuser.SecretsEnvDir, asuser.SecretsFileDir}

// openSecrets opens the user's secret directory through its checked chain,
// making it first when create is set. A link anywhere from the trusted
// prefix down (the directory itself replaced by a symlink) is refused.
func openSecrets(dir string, create bool) (*wsfs.FS, error) {
	if create {
		if err := wsfs.CreateBelow(dir, secretsTrusted()); err != nil {
			return nil, fsErr(fmt.Errorf("create the secret directory: %w", err))
		}
	}
	w, err := wsfs.OpenBelow(dir, secretsTrusted())
	if err != nil {
		return nil, fsErr(fmt.Errorf("open the secret directory: %w", err))
	}
	return w, nil
}

// secretExists reports whether name is stored, as either type.
func secretExists(w *wsfs.FS, name string) (bool, error) {
	for _, t := range secretTypes {
		ok, err := w.Exists(path.Join(t, name))
		if ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

func secretsWrite(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.SecretsWriteArgs](raw)
	if err != nil {
		return nil, err
	}
	for _, s := range a.Secrets {
		if err := asuser.CheckSecretName(s.Name, s.Type); err != nil {
			return nil, asuser.Errorf(asuser.KindBadPath, "%v", err)
		}
	}
	w, err := openSecrets(a.Dir, true)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if err := w.MakePrivate(); err != nil {
		return nil, fsErr(err)
	}
	if !a.Overwrite {
		var taken []string
		for _, s := range a.Secrets {
			ok, err := secretExists(w, s.Name)
			if err != nil {
				return nil, fsErr(err)
			}
			if ok {
				taken = append(taken, s.Name)
			}
		}
		if len(taken) > 0 {
			return nil, asuser.Errorf(asuser.KindExists, "secrets %s already exist", strings.Join(taken, ", "))
		}
	}
	for _, s := range a.Secrets {
		if err := writeSecret(w, s); err != nil {
			return nil, fsErr(fmt.Errorf("store secret %s: %w", s.Name, err))
		}
	}
	return struct{}{}, nil
}

// writeSecret replaces the secret's file at once (a job starting meanwhile
// reads the old value or the new, never half of one), then removes a
// value of the other type under the same name.
func writeSecret(w *wsfs.FS, s asuser.Secret) error {
	dir := asuser.SecretsEnvDir
	if s.Type == asuser.SecretFile {
		dir = asuser.SecretsFileDir
	}
	f, commit, abort, err := w.CreateTemp(path.Join(dir, s.Name))
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(s.Value); err != nil {
		abort()
		return err
	}
	if err := f.Sync(); err != nil {
		abort()
		return err
	}
	if _, err := commit(); err != nil {
		return err
	}
	for _, t := range secretTypes {
		if t == dir {
			continue
		}
		if err := w.RemoveFile(path.Join(t, s.Name)); err != nil && !errors.Is(err, wsfs.ErrNotFound) {
			return err
		}
	}
	return nil
}

func secretsDelete(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.SecretsDeleteArgs](raw)
	if err != nil {
		return nil, err
	}
	res := asuser.SecretsDeleteResult{Deleted: []string{}}
	w, err := openSecrets(a.Dir, false)
	if errors.Is(err, os.ErrNotExist) || asuser.IsKind(err, asuser.KindNotFound) {
		res.Missing = a.Names
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	defer w.Close()
	for _, n := range a.Names {
		ok, err := false, asuser.CheckSecretName(n, asuser.SecretFile)
		if err == nil {
			ok, err = secretExists(w, n)
		}
		if err != nil || !ok {
			res.Missing = append(res.Missing, n)
		}
	}
	if len(res.Missing) > 0 {
		return res, nil
	}
	for _, n := range a.Names {
		for _, t := range secretTypes {
			if err := w.RemoveFile(path.Join(t, n)); err != nil && !errors.Is(err, wsfs.ErrNotFound) {
				return nil, fsErr(fmt.Errorf("delete secret %s: %w", n, err))
			}
		}
		res.Deleted = append(res.Deleted, n)
	}
	return res, nil
}

func secretsRemove(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.SecretsDirArgs](raw)
	if err != nil {
		return nil, err
	}
	w, err := openSecrets(a.Dir, false)
	if asuser.IsKind(err, asuser.KindNotFound) {
		return 0, nil
	}
	if err != nil {
		return nil, err
	}
	defer w.Close()
	n := 0
	for _, t := range secretTypes {
		names, err := w.Files(t)
		if err != nil {
			return nil, fsErr(err)
		}
		n += len(names)
	}
	if err := w.RemoveAll(); err != nil {
		return nil, fsErr(fmt.Errorf("remove the secret directory: %w", err))
	}
	return n, nil
}

// maxSecretRead bounds what secrets.read returns for one secret; the API
// refuses larger values when they are added.
const maxSecretRead = 64 << 20

func secretsRead(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.SecretsDirArgs](raw)
	if err != nil {
		return nil, err
	}
	out := []asuser.Secret{}
	w, err := openSecrets(a.Dir, false)
	if asuser.IsKind(err, asuser.KindNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer w.Close()
	for _, t := range secretTypes {
		names, err := w.Files(t)
		if err != nil {
			return nil, fsErr(err)
		}
		for _, n := range names {
			if asuser.CheckSecretName(n, t) != nil {
				continue // not one the API stored
			}
			f, _, err := w.OpenRead(path.Join(t, n))
			if err != nil {
				return nil, fsErr(fmt.Errorf("read secret %s: %w", n, err))
			}
			v, err := io.ReadAll(io.LimitReader(f, maxSecretRead))
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("read secret %s: %w", n, err)
			}
			out = append(out, asuser.Secret{Name: n, Type: t, Value: v})
		}
	}
	return out, nil
}
